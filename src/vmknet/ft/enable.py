"""`vmknet vm ft on|off|status`: protect a running VM with a secondary on another host.

    ft_on(dc, lab, "web01", "esx02")   # refusals first, then the secondary, synced

Refusals before anything starts: the FT logging adapters resolve() picks between the
two hosts (PATH-3 / SVC-5: none on a host is a rule error; NoPath), FT-3's per-host
limits. Then one "ft" ticket (SEC-4), a listener on the secondary's FT logging adapter,
the secondary VM process started for that ticket, one connection over the resolve()
pair, the ticket presented on it, and the socket handed to the primary VM process: it
syncs the secondary (one pre-copy round) and checkpoints every epoch (primary.py).
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import time
from dataclasses import asdict
from typing import Any

from ..controller.client import ControllerClient
from ..errors import (
    AlreadyExists,
    InvalidArgument,
    NoPath,
    NotFound,
    RuleViolation,
    VmknetError,
)
from ..mgmt.paths import api_socket
from ..model import Datacenter, Service
from ..resolve import effective_adapters, resolve
from ..traffic.place import LabRef, adapter_addresses, lab_name, stack_ns
from ..traffic.sockets import close_all, connect, default_port, listen
from ..trust.issuer import issuer_for
from ..trust.tickets import present
from ..vm import control, manage, registry
from ..vm.launch import spawn
from ..vmotion import crypto
from ..vmotion.orchestrate import pair_stat, receivers
from . import arbiter, limits, records

SYNC_TIMEOUT = 60.0  # s: the sync round sends the whole memory once
STOP_TIMEOUT = 5.0


def ft_on(dc: Datacenter, lab: LabRef, vm: str, secondary: str, *, epoch: float = 0.05,
          vcpus: int = 1, timeout: float = 2.0, port: int | None = None,
          verify: bool = False, wait: bool = True, output_port: int | None = None,
          output_rate: float = 200.0, reprotect: bool = False,
          encryption: str = crypto.OPPORTUNISTIC) -> records.FtRecord:
    """Start the secondary of `vm` on `secondary` and keep it in step; its FT record.

    `timeout`: seconds without a checkpoint (secondary) or an ACK (primary) that mean
    the other side or the link is gone. `verify`: both ends log memory digests (tests).
    `wait`: return once the sync round is done and the first checkpoint acknowledged.
    `output_port`: give the VM an output stream (`output_rate` records/s) on that port of
    its host's management adapter, under output commit (output.py). `reprotect`: the new
    pair after a failover (reprotect.py; the controller records FtReprotected).
    `encryption` (SEC-1): disabled, opportunistic (when both hosts can) or required; the
    pair's AES-256-GCM key travels in the FT ticket only, as vMotion's does.
    """
    name = lab_name(lab)
    rec = manage.get(name, vm)
    if not 0.005 <= epoch <= 10:
        raise InvalidArgument(f"FT epoch {epoch * 1000:.0f} ms: use 5 to 10000 ms")
    if secondary == rec.host:
        raise RuleViolation("FT-1", f"The secondary of {vm} must run on another host than "
                            f"the primary ({rec.host})", vm=vm)
    if secondary not in dc.hosts:
        raise NotFound(f"Host {secondary} is not in the inventory", host=secondary)
    with contextlib.suppress(NotFound):
        old = records.load(name, vm)
        if old.state == records.PROTECTED and registry.alive(old.secondary_pid):
            raise AlreadyExists(f"VM {vm} is already protected (secondary on "
                                f"{old.secondary})", vm=vm)
    flows = resolve(dc, Service.FT_LOGGING, rec.host, secondary)  # PATH-3 / SVC-5, NoPath
    limits.check([(r.primary, r.secondary, r.vcpus) for r in live_records(name)
                  if r.vm != vm], rec.host, secondary, vcpus)  # FT-3
    encrypted = _encryption(name, rec.host, secondary, crypto.check_mode(encryption))
    session = f"{vm}-{secrets.token_hex(6)}"
    out = {h: output_at(dc, lab, h, output_port, output_rate)
           for h in (rec.host, secondary)} if output_port else {}
    ticket = issuer_for(name).issue("ft", rec.host, secondary, uses=1,
                                    key=crypto.new_key() if encrypted else None)
    args: dict[str, Any] = {
        "ticket": ticket.id, "memory": rec.memory, "dirtyRate": rec.dirty_rate,
        "seed": _seed(rec.control), "session": session, "timeout": timeout,
        "verify": int(verify), **({"output": json.dumps(out[secondary])} if out else {})}
    pid = _start_secondary(dc, lab, vm, secondary, args, port)
    try:
        conns = connect(dc, lab, Service.FT_LOGGING, rec.host, secondary, port)
        try:
            present(conns[0].sock, ticket)
            record = records.FtRecord(vm, name, rec.host, secondary, rec.pid, pid,
                                      _control(name, vm, pid), session, vcpus, epoch,
                                      timeout=timeout, output_port=output_port,
                                      output_rate=output_rate, encryption=encryption,
                                      encrypted=encrypted)
            records.save(record)
            # before any claim can come: the secondary claims only after a checkpoint
            arbiter.begin(name, vm, session, rec.host, secondary, reprotect)
            with control.connect(rec.control) as sock:
                control.send_line(sock, {"cmd": "ft", "params": {
                    "session": session, "epoch": epoch, "timeout": timeout,
                    "verify": verify, "pair": asdict(pair_stat(flows[0])),
                    "ticket": ticket.id, "encrypted": encrypted,
                    "output": out.get(rec.host)}},
                    [conns[0].sock.fileno()])
                reply = control.LineReader(sock).read() or {
                    "ok": False, "error": "the primary VM closed its control socket"}
        finally:
            close_all(conns)  # the primary VM holds its own copy
        if not reply.get("ok"):
            raise InvalidArgument(str(reply.get("error", "the primary refused FT")), vm=vm)
        if wait:
            _wait_protected(name, vm, rec.control)
    except BaseException:
        records.remove(name, vm)
        _stop_secondary(name, vm, secondary, pid)
        arbiter.forget(name, vm, session)
        raise
    return record


def _encryption(lab: str, primary: str, secondary: str, mode: str) -> bool:
    """SEC-1: encrypt the FT logging link? Refused before anything starts when `required`
    meets a host that cannot."""
    cannot = [h for h in (primary, secondary) if not registry.host_encryption(lab, h)]
    if mode == crypto.REQUIRED and cannot:
        raise RuleViolation("SEC-1", f"Encrypted FT logging is required but host "
                            f"{cannot[0]} does not support it: use --encryption "
                            "opportunistic or disabled, or another host", host=cannot[0])
    return crypto.decide(mode, not cannot)[0]


def output_at(dc: Datacenter, lab: LabRef, host: str, port: int,
              rate: float) -> dict[str, Any]:
    """Where a VM on `host` serves its output: the host's first management adapter."""
    chosen = effective_adapters(dc, host, Service.MANAGEMENT)
    if not chosen:
        raise NoPath(f"Host {host} has no management adapter to serve the VM's output on",
                     host=host)
    vmk = chosen[0][0]
    return {"ns": stack_ns(lab, host, dc.host(host).vmknics[vmk].netstack),
            "address": str(adapter_addresses(dc, host, vmk)[0].ip), "port": port,
            "rate": rate}


def live_records(lab: str) -> list[records.FtRecord]:
    """Protected VMs whose secondary still runs (what FT-3 counts)."""
    return [r for r in records.records(lab)
            if r.state == records.PROTECTED and registry.alive(r.secondary_pid)]


def ft_off(lab: LabRef, vm: str) -> records.FtRecord:
    """Stop protecting `vm`: the secondary stands down (BYE), the primary runs on."""
    name = lab_name(lab)
    rec = records.load(name, vm)
    with contextlib.suppress(NotFound):
        primary = manage.get(name, vm)
        if primary.pid != rec.secondary_pid:
            control.request(primary.control, {"cmd": "ft-off"}, timeout=15.0)
    deadline = time.monotonic() + STOP_TIMEOUT
    while registry.alive(rec.secondary_pid) and time.monotonic() < deadline:
        time.sleep(0.02)
    if rec.state == records.PROTECTED:
        _stop_secondary(name, vm, rec.secondary, rec.secondary_pid)
    records.remove(name, vm)
    arbiter.forget(name, vm, rec.session)
    return rec


def ft_status(lab: LabRef, vm: str) -> dict[str, Any]:
    """The FT record, the primary's checkpoint counters, the secondary's state, events."""
    name = lab_name(lab)
    rec = records.load(name, vm)
    out: dict[str, Any] = asdict(rec)
    out["primary_ft"] = _ft_of(name, vm)
    out["secondary_ft"] = None
    if rec.state == records.PROTECTED:
        with contextlib.suppress(NotFound, OSError):
            out["secondary_ft"] = control.request(rec.secondary_control,
                                                  {"cmd": "status"}).get("ft")
    out["arbiter"] = arbiter.winner(name, rec.session)
    out["events"] = records.events(name, vm)
    return out


def _ft_of(lab: str, vm: str) -> dict[str, Any] | None:
    with contextlib.suppress(NotFound, OSError):
        ft = manage.status(lab, vm).get("ft")
        return ft if isinstance(ft, dict) else None
    return None


def _wait_protected(lab: str, vm: str, path: str) -> None:
    deadline = time.monotonic() + SYNC_TIMEOUT
    while time.monotonic() < deadline:
        ft = control.request(path, {"cmd": "status"}).get("ft") or {}
        if ft.get("state") == "protected" and int(ft.get("checkpoints", 0)) > 0:
            return
        if ft.get("state") in ("unprotected", "off", "stood-down"):
            break
        time.sleep(0.05)
    raise VmknetError(f"The secondary of {vm} did not reach the primary's state",
                      code="FtSyncFailed", vm=vm)


def _control(lab: str, vm: str, pid: int) -> str:
    return str(registry.vms_dir(lab) / f"{vm}.{pid}.sock")


def _seed(path: str) -> int:
    seed = control.request(path, {"cmd": "status"}).get("seed")
    return int(seed) if isinstance(seed, int) else 1


def _start_secondary(dc: Datacenter, lab: LabRef, vm: str, host: str, args: dict[str, Any],
                     port: int | None) -> int:
    """The secondary VM on `host`, listening on its FT logging adapters; its pid.

    In a lab with a controller the host's agent starts it as its child (kind
    `ft-secondary`: the controller checks the listeners are the adapters resolve()
    picks, the agent that its book holds the ft ticket, SEC-2 and SEC-4); without
    one this process starts it, detached, with the listeners it opened.
    """
    name = lab_name(lab)
    ftport = default_port(Service.FT_LOGGING) if port is None else port
    if manage.via_controller(dc, name):
        got = ControllerClient(name, manage.START_TIMEOUT).call("process.start", {
            "host": host, "kind": "ft-secondary", "name": vm, "args": {
                **args, "ftlog": receivers(dc, host, Service.FT_LOGGING), "ftPort": ftport}})
        return int(got["pid"])
    listeners = listen(dc, lab, host, Service.FT_LOGGING, port)
    try:
        return spawn("ft-secondary", name, vm, host, [
            f"--vm-fds={','.join(str(x.sock.fileno()) for x in listeners)}",
            f"--ticket={args['ticket']}", f"--memory={args['memory']}",
            f"--dirty-rate={args['dirtyRate']}", f"--seed={args['seed']}",
            f"--ft-session={args['session']}", f"--ft-timeout={args['timeout']}",
            f"--ft-verify={args['verify']}",
            *([f"--ft-output={args['output']}"] if "output" in args else [])],
            pass_fds=[x.sock.fileno() for x in listeners])
    finally:
        close_all(listeners)  # the secondary has its own copies


def _stop_secondary(lab: str, vm: str, host: str, pid: int) -> None:
    """End a secondary: through its host's agent when it is the agent's child (so the agent
    does not report it as a death), else, or if the agent is gone, a SIGKILL."""
    if registry.alive(pid) and api_socket(lab).exists():
        with contextlib.suppress(VmknetError):  # NotFound: not the agent's; its agent gone
            ControllerClient(lab, manage.START_TIMEOUT).call("process.stop", {
                "host": host, "kind": "ft-secondary", "name": vm})
    _kill(pid)


def _kill(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + STOP_TIMEOUT
    while registry.alive(pid) and time.monotonic() < deadline:
        time.sleep(0.02)
