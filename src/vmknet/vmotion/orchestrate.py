"""`migrate()`: live-migrate a lab VM to another host (what `vmknet vmotion` runs).

    report = migrate(dc, lab, "web01", "esx02", max_downtime=0.1, encryption="required")

The orchestrator never touches guest memory. It asks resolve() for the adapter
pairs (EX-5 / REQ-1 and NoPath refuse here, before anything starts), has the
incoming VM started with its listeners open (vMotion on the target's effective
vMotion adapters, the control channel on its management adapters), opens one
connection per pair with `traffic.sockets.connect` and hands all of them to the
source VM process over its control socket (SCM_RIGHTS).

Who starts the incoming VM (`spawn`): in a lab with a controller, the target
host's agent (controller `process.start` kind `incoming`: the ticket, and the
{stack, address} of each listener); the agent opens the listeners in its host's
namespaces, starts the VM as its child with them, and answers with their ports,
so they exist before the source connects; on an abort the agent stops it
(`process.stop`) and its listeners close with it; after the switchover it is
the VM, the agent's child. A lab without a controller keeps the direct path:
this process makes the listeners with `traffic.sockets.listen` and starts the
incoming VM detached with them. The source VM runs pre-copy and streams its
progress back; its last line is the report. Sockets are opened once, so a
migration runs to its end over the pairs it started with (EX-2).

SEC-4: the migration has one "vmotion" ticket (uses: the management connection and
every stream; the AES key inside). The incoming VM is started for that ticket and
admits only connections that prove it; this orchestrator presents it on each
connection before handing the sockets over. The source VM reads the key from its
host's copy of the ticket: no key crosses the management connection.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Callable
from typing import Any

from ..controller.client import ControllerClient
from ..errors import DataplaneError, InvalidArgument, NoPath, RuleViolation, VmknetError
from ..model import Datacenter, Service
from ..resolve import Flow, effective_adapters, resolve
from ..traffic.place import LabRef, adapter_addresses, lab_name
from ..traffic.sockets import Connection, close_all, connect, default_port, listen
from ..trust.issuer import issuer_for
from ..trust.tickets import present
from ..vm import control, launch, manage, registry
from ..vm.disk import DiskSpec, check_host
from . import crypto
from .report import ABORTED, MigrationReport, PairStat

Progress = Callable[[dict[str, Any]], None]
KILL_TIMEOUT = 3.0
# The migration's control channel on the target's management adapters. Not 443: that
# is the host agent's (MGMT-1); not 8000: a management adapter may also carry vMotion.
CONTROL_PORT = 8001


def pair_stat(flow: Flow) -> PairStat:
    s, t = flow.source, flow.target
    return PairStat(s.vmknic, str(s.address.ip), t.vmknic, str(t.address.ip), s.netstack,
                    str(flow.next_hop) if flow.next_hop else None)


def migrate(dc: Datacenter, lab: LabRef, vm: str, target: str, *,
            max_downtime: float = 0.1, encryption: str = crypto.OPPORTUNISTIC,
            max_rounds: int = 10, throttle_rounds: int = 6, timeout: float = 15.0,
            rate_limit: float | None = None, port: int | None = None,
            mgmt_port: int | None = None, progress: Progress | None = None,
            ) -> MigrationReport:
    """Live-migrate `vm` to `target`; the report says completed or aborted (and why).

    Raises (nothing started): NotFound (no such VM), InvalidArgument, RuleViolation
    EX-5 (an end without an effective vMotion adapter), NoPath, DataplaneError
    (a pair cannot connect), RuleViolation SEC-1 (encryption required, target
    cannot). `timeout`: seconds a stream may make no progress before it is
    dropped (above the ~4 s STP outage of a teaming failover). `rate_limit`:
    bytes/s per stream, to emulate a slower network (tests, benchmarks).
    """
    name = lab_name(lab)
    crypto.check_mode(encryption)
    rec = manage.get(name, vm)
    if rec.host == target:
        raise InvalidArgument(f"VM {vm} already runs on {target}", vm=vm)
    if target not in dc.hosts:
        raise InvalidArgument(f"Host {target} is not in the inventory", host=target)
    if rec.disk is not None:  # STO-5: the target must see the VM's disk (vCenter's check)
        check_host(dc, name, target, DiskSpec.from_dict(rec.disk))
    flows = resolve(dc, Service.VMOTION, rec.host, target)  # EX-5 / REQ-1, NoPath
    resolve(dc, Service.MANAGEMENT, rec.host, target)  # the agents meet on management
    # SEC-4: one ticket for this migration, one use per connection (management + streams);
    # the AES key rides inside it, so it never crosses the management connection.
    key = crypto.new_key() if encryption != crypto.DISABLED else None
    ticket = issuer_for(name).issue("vmotion", rec.host, target, uses=len(flows) + 1, key=key)
    mgmt_port = CONTROL_PORT if mgmt_port is None else mgmt_port
    target_pid = spawn(dc, lab, vm, target, ticket.id, port, mgmt_port)
    try:
        mgmt = connect(dc, lab, Service.MANAGEMENT, rec.host, target, mgmt_port)
        close_all(mgmt[1:])  # one management connection carries the control
        mgmt = mgmt[:1]
        streams: list[Connection] = []
        try:
            streams = connect(dc, lab, Service.VMOTION, rec.host, target, port)
            for c in (*mgmt, *streams):  # before the source VM sees a socket
                present(c.sock, ticket)
        except BaseException:
            close_all([*mgmt, *streams])
            raise
    except BaseException:
        _kill(dc, name, vm, target, target_pid)
        raise
    params = {"target": target, "target_pid": target_pid, "max_downtime": max_downtime,
              "encryption": encryption, "max_rounds": max_rounds,
              "throttle_rounds": throttle_rounds, "timeout": timeout,
              "rate_limit": rate_limit, "pairs": [pair_stat(f).__dict__ for f in flows],
              "ticket": ticket.id}
    report = _run(rec.control, params, [mgmt[0].sock.fileno(),
                                        *(s.sock.fileno() for s in streams)],
                  lambda: close_all([*mgmt, *streams]), progress)
    if report is None:
        report = MigrationReport(vm, rec.host, target, reason="the source VM process died "
                                 "during the migration", code="SourceDied",
                                 encryption_mode=encryption,
                                 pairs=[pair_stat(f) for f in flows])
    if report.completed:
        _wait_exit(rec.pid)  # the source releases its memory and exits once the target runs
    if report.result == ABORTED:
        _kill(dc, name, vm, target, target_pid)  # the source keeps the VM: the copy goes
        if report.code == "SEC-1":
            raise RuleViolation("SEC-1", report.reason, vm=vm, target=target)
    return report


def spawn(dc: Datacenter, lab: LabRef, vm: str, target: str, ticket: str, port: int | None,
          mgmt_port: int) -> int:
    """Start the incoming VM of `vm` on `target` with its listeners open; its pid."""
    name = lab_name(lab)
    if manage.via_controller(dc, name):
        return _by_agent(dc, name, vm, target, ticket, port, mgmt_port)
    vm_listen = listen(dc, lab, target, Service.VMOTION, port)
    try:
        mgmt_listen = listen(dc, lab, target, Service.MANAGEMENT, mgmt_port)
    except BaseException:
        close_all(vm_listen)
        raise
    try:
        return launch.spawn("incoming", name, vm, target, [
            f"--mgmt-fds={','.join(str(x.sock.fileno()) for x in mgmt_listen)}",
            f"--vm-fds={','.join(str(x.sock.fileno()) for x in vm_listen)}",
            f"--ticket={ticket}"],
            pass_fds=[x.sock.fileno() for x in (*mgmt_listen, *vm_listen)])
    finally:
        close_all([*vm_listen, *mgmt_listen])  # the incoming VM has its own copies


def receivers(dc: Datacenter, host: str, service: Service) -> list[dict[str, str]]:
    """{stack, address} of each address `traffic.sockets.listen` would bind (NoPath: none)."""
    chosen = effective_adapters(dc, host, service)
    if not chosen:
        raise NoPath(f"Host {host} has no adapter that receives {service.tag}: tag one with "
                     f"{service.tag}", host=host, service=service.value)
    nics = dc.host(host).vmknics
    return [{"stack": nics[vmk].netstack, "address": str(a.ip)}
            for vmk, _ in chosen for a in adapter_addresses(dc, host, vmk)]


def _by_agent(dc: Datacenter, lab: str, vm: str, target: str, ticket: str, port: int | None,
              mgmt_port: int) -> int:
    """The target's agent starts the incoming VM as its child; its pid once it listens."""
    vport = default_port(Service.VMOTION) if port is None else port
    got = ControllerClient(lab, manage.START_TIMEOUT).call("process.start", {
        "host": target, "kind": "incoming", "name": vm, "args": {
            "ticket": ticket, "vmotion": receivers(dc, target, Service.VMOTION),
            "management": receivers(dc, target, Service.MANAGEMENT),
            "vmotionPort": vport, "controlPort": mgmt_port}})
    pid = int(got["pid"])
    ports = {(row["fds"], int(row["port"])) for row in got.get("listening", [])}
    if ports != {("vm-fds", vport), ("mgmt-fds", mgmt_port)}:
        _kill(dc, lab, vm, target, pid)
        raise DataplaneError(f"The incoming VM of {vm} on {target} listens on {sorted(ports)}, "
                             f"not on {vport} and {mgmt_port}", code="DataplaneError",
                             vm=vm, host=target)
    return pid


def _run(path: str, params: dict[str, Any], fds: list[int], sent: Callable[[], None],
         progress: Progress | None) -> MigrationReport | None:
    """Hand the sockets to the source VM; relay its progress; its report."""
    sock = control.connect(path, timeout=control.TIMEOUT)
    try:
        control.send_line(sock, {"cmd": "migrate", "params": params}, fds)
    finally:
        sent()  # the source VM holds its own copies now
    sock.settimeout(None)  # the source's stream timeouts bound the migration
    reader = control.LineReader(sock)
    with sock:
        while (event := reader.read()) is not None:
            if event.get("event") == "report":
                return MigrationReport.from_dict(event["report"])
            if event.get("event") == "error":
                raise InvalidArgument(str(event.get("error")))
            if progress is not None:
                progress(event)
    return None


def _wait_exit(pid: int) -> None:
    deadline = time.monotonic() + KILL_TIMEOUT
    while registry.alive(pid) and time.monotonic() < deadline:
        time.sleep(0.02)


def _kill(dc: Datacenter, lab: str, vm: str, target: str, pid: int) -> None:
    """End an incoming VM that did not become the VM: it exits by itself on an abort;
    else its agent stops it (the agent's child), or, without one, a SIGKILL."""
    deadline = time.monotonic() + KILL_TIMEOUT
    while registry.alive(pid) and time.monotonic() < deadline:
        time.sleep(0.02)  # an aborted incoming VM exits by itself
    if registry.alive(pid) and manage.via_controller(dc, lab):
        with contextlib.suppress(VmknetError):  # NotFound, its agent gone: SIGKILL below
            ControllerClient(lab, manage.START_TIMEOUT).call("process.stop", {
                "host": target, "kind": "incoming", "name": vm})
    if registry.alive(pid):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    _wait_exit(pid)  # a SIGKILL is delivered, not yet done: the caller sees it gone
