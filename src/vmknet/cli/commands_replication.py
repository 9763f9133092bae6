"""`vmknet replication configure|status|recover|stop`: vSphere Replication of the bound lab.

    vmknet replication configure web01 --server vr01 --target esx04 --rpo 5m \
        [--write-rate 20MB/s] [--datastore ds1]
    vmknet replication status [--json]
    vmknet replication recover web01 [--no-power-on]
    vmknet replication stop web01

In a lab with a controller each host's agent runs its part as its child: the source
agent on the VM's host (replication/daemon.py `source`), the server endpoint on the
server host and the replica endpoint on the target (replication/endpoint.py); `configure`
asks them through the controller. Without one, one detached daemon holds all three.
`lab down` stops them either way.
"""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import click

from ..controller.client import ControllerClient
from ..errors import AlreadyExists, InvalidArgument, NotFound, VmknetError
from ..lab.registry import run_dir
from ..model import names
from ..nfc.files import Datastores
from ..paths import inside
from ..provision import files, placement
from ..replication import ReplicationConfig, check, procs, recover, state_dir
from ..replication.cbt import disk_digest
from ..replication.state import flow_info
from ..supervise import scan
from ..supervise.records import read_json
from ..vm.manage import via_controller
from ..vm.units import human_bytes, parse_rate
from .context import AppContext, pass_app, reported
from .output import emit_json, say, table
from .vm_common import bound, valid

START_TIMEOUT = 30.0
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "": 1.0}
MAX_RPO = 24 * 3600.0


def parse_rpo(text: str) -> float:
    """``5m`` / ``30s`` / ``500ms`` / ``2`` (seconds) -> seconds."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|)\s*", text[:64])
    if m is None or float(m.group(1)) <= 0:
        raise InvalidArgument(f"RPO {text[:40]!r}: give a positive duration such as 5m, 30s, "
                              "500ms")
    seconds = float(m.group(1)) * _UNITS[m.group(2)]
    if not seconds <= MAX_RPO:  # vSphere Replication's longest RPO is 24 hours
        raise InvalidArgument(f"RPO {text[:40]!r}: at most 24h")
    return seconds


@click.group("replication")
def replication() -> None:
    """vSphere Replication: a VM's disk from its host through a server to a target host."""


def _config(app: AppContext, vm: str, server: str, target: str, rpo: str, write_rate: str,
            datastore: str | None, netstack: str | None) -> tuple[ReplicationConfig, Path]:
    dc, lab = bound(app)
    p = placement.load(lab.name, vm)
    vmx = files.read_vmx(p)
    for host in (server, target):
        if host not in dc.hosts:
            raise InvalidArgument(f"Host {host} is not in the inventory", host=host)
    cfg = ReplicationConfig(lab.name, vm, p.host, server, target,
                            str(files.vm_dir(p) / vmx.disk), datastore or p.datastore,
                            f"{vm}/{vmx.disk}", parse_rpo(rpo),
                            write_rate=parse_rate(write_rate, what="--write-rate", minimum=0),
                            netstack=netstack)
    return cfg, Path(p.base)


def _start(app: AppContext, cfg: ReplicationConfig, base: Path,
           verify: bool) -> dict[str, Any]:
    record = procs.record_path(cfg.lab, cfg.vm)
    record.unlink(missing_ok=True)
    (state_dir(cfg.lab) / f"source-{cfg.vm}.json").unlink(missing_ok=True)
    if via_controller(app.inventory.read(), cfg.lab):
        return _start_by_agents(cfg, base, verify)
    log = procs.log_path(cfg.lab, cfg.vm)
    log.parent.mkdir(parents=True, exist_ok=True)
    argv = [sys.executable, "-m", procs.MARKER, f"--lab={cfg.lab}", f"--vm={cfg.vm}",
            f"--store={app.inventory.store.path}", f"--source={cfg.source}",
            f"--server={cfg.server}", f"--target={cfg.target}", f"--disk={cfg.disk}",
            f"--datastore={cfg.datastore}", f"--path={cfg.path}", f"--base={base}",
            f"--rpo={cfg.rpo}", f"--write-rate={cfg.write_rate}", *(["--verify"] if verify else [])]
    with open(log, "ab") as out:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=out,
                                start_new_session=True, env=dict(os.environ))
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        state = read_json(record).get("state")
        if state == "running":
            return read_json(record)
        if state == "failed" or proc.poll() is not None:
            break
        time.sleep(0.05)
    procs.stop_vm(cfg.lab, cfg.vm)
    tail = log.read_text("utf-8", "replace").strip().splitlines()[-3:]
    raise VmknetError(f"The replication daemon of {cfg.vm} did not start "
                      f"({read_json(record).get('error') or 'timeout'}); log {log}: "
                      + " | ".join(tail), vm=cfg.vm)


def _start_by_agents(cfg: ReplicationConfig, base: Path, verify: bool) -> dict[str, Any]:
    """Each host's agent starts its part: the target's replica endpoint and the server
    (unless that host runs one already: one per host serves every replication through
    it), then the source agent; its record once it runs."""
    client = ControllerClient(cfg.lab, START_TIMEOUT + 30)
    parts = [(cfg.target, "replica-nfc", {"base": str(base.resolve())}),
             (cfg.server, "replication-server", {})]
    started: list[tuple[str, str]] = []
    try:
        for host, kind, args in parts:
            if not scan.find(cfg.lab, host, kind):
                client.call("process.start", {"host": host, "kind": kind, "name": host,
                                              "args": args})
                started.append((host, kind))
        client.call("process.start", {"host": cfg.source, "kind": "replication",
                                      "name": cfg.vm, "args": {
            "server": cfg.server, "target": cfg.target, "disk": cfg.disk,
            "datastore": cfg.datastore, "path": cfg.path, "rpo": cfg.rpo,
            "writeRate": cfg.write_rate, "verify": int(verify)}})
    except VmknetError:
        procs.stop_vm(cfg.lab, cfg.vm)
        for host, kind in started:  # what this configure started goes with it
            with contextlib.suppress(VmknetError):
                client.call("process.stop", {"host": host, "kind": kind, "name": host})
        raise
    log = inside(run_dir(), cfg.lab) / "processes" / f"replication-{cfg.vm}.log"
    record = procs.record_path(cfg.lab, cfg.vm)
    deadline = time.monotonic() + START_TIMEOUT  # up: now its first hello to the server
    while time.monotonic() < deadline:
        state = read_json(record).get("state")
        if state == "running":
            return read_json(record) | {"log": str(log)}
        if state == "failed" or not procs.vm_pids(cfg.lab, cfg.vm):
            break
        time.sleep(0.05)
    procs.stop_vm(cfg.lab, cfg.vm)
    for host, kind in started:
        with contextlib.suppress(VmknetError):
            client.call("process.stop", {"host": host, "kind": kind, "name": host})
    tail = log.read_text("utf-8", "replace").strip().splitlines()[-3:] if log.exists() else []
    raise VmknetError(f"The replication of {cfg.vm} did not start "
                      f"({read_json(record).get('error') or 'timeout'}); log {log}: "
                      + " | ".join(tail), vm=cfg.vm)


def _legs_table(legs: list[list[dict[str, str]]]) -> None:
    table(("Leg", "Source", "Target", "Addresses", "Why (PATH-4)"),
          [[n, f["source"], f["target"], f["address"], f["reason"]]
           for n, leg in enumerate(legs, 1) for f in leg])


@replication.command("configure")
@click.argument("vm_name", metavar="VM")
@click.option("--server", required=True, help="The replication server appliance (a lab host).")
@click.option("--target", required=True, help="The host that receives the replica.")
@click.option("--rpo", required=True, help="Recovery point objective, e.g. 5m, 30s.")
@click.option("--write-rate", "write_rate", default="0", show_default=True,
              help="Stand-in guest writes to the source disk, e.g. 20MB/s.")
@click.option("--datastore", default=None, help="Target datastore [default: the source's].")
@click.option("--verify", is_flag=True,
              help="Digest the whole source disk at each point in time (recover checks it).")
@click.option("--netstack", default=None, hidden=True,
              help="The stack to replicate on (only the default stack: SVC-4).")
@pass_app
def configure_command(app: AppContext, vm_name: str, server: str, target: str, rpo: str,
                      write_rate: str, datastore: str | None, verify: bool,
                      netstack: str | None) -> None:
    """Replicate VM through SERVER to TARGET, a sync at least every RPO/2 (a daemon)."""
    valid((names.VM, vm_name, "VM name"), (names.HOST, server, "--server"),
          (names.HOST, target, "--target"), (names.DATASTORE, datastore, "--datastore"),
          (names.NETSTACK, netstack, "--netstack"))
    with reported():
        parse_rpo(rpo)  # input first: before the lab is looked up
        parse_rate(write_rate, what="--write-rate", minimum=0)
        cfg, base = _config(app, vm_name, server, target, rpo, write_rate, datastore, netstack)
        leg1, leg2 = check(app.inventory.read(), cfg)  # SVC-4, NoPath: before anything starts
        if procs.vm_pids(cfg.lab, cfg.vm):
            raise AlreadyExists(f"VM {cfg.vm} is already replicated: "
                                f"'vmknet replication stop {cfg.vm}' first", vm=cfg.vm)
        busy = [vm for vm, rec in procs.records(cfg.lab).items()
                if procs.running(rec) and read_json(_status(cfg.lab, vm)).get("server") == server]
        if busy:
            raise AlreadyExists(f"Server {server} already replicates {busy[0]} "
                                "(one replication per server in this version)", host=server)
        Datastores(base).create(cfg.lab, target, cfg.datastore)
        rec = _start(app, cfg, base, verify)
    say(f"Replicating {cfg.vm}: {cfg.source} -> {cfg.server} -> {cfg.target}:[{cfg.datastore}] "
        f"RPO {cfg.rpo:g} s, writes {human_bytes(cfg.write_rate)}/s "
        f"(daemon pid {rec['pid']}, log {rec.get('log') or procs.log_path(cfg.lab, cfg.vm)})",
        style="green")
    _legs_table([[flow_info(f) for f in leg1], [flow_info(f) for f in leg2]])


def _status(lab: str, vm: str) -> Path:
    return state_dir(lab) / f"source-{vm}.json"


def _row(lab: str, vm: str, rec: dict[str, Any]) -> dict[str, Any]:
    s = read_json(_status(lab, vm))
    return {"vm": vm, "state": "running" if procs.running(rec) else rec.get("state", "stopped"),
            "pid": rec.get("pid"), "source": s.get("source"), "server": s.get("server"),
            "target": s.get("target"), "datastore": s.get("datastore"), "rpo": s.get("rpo"),
            "last_sync": s.get("last_sync") or None, "generation": s.get("gen"),
            "syncs": s.get("syncs", 0), "missed": s.get("missed", 0),
            "met": int(s.get("syncs", 0)) - int(s.get("missed", 0)),
            "rpo_last": s.get("rpo_last"), "rpo_worst": s.get("rpo_worst"),
            "bytes_last": s.get("bytes_last", 0), "bytes_total": s.get("bytes_total", 0),
            "error": s.get("error") or rec.get("error"),
            "leg1": s.get("leg1_used") or s.get("leg1", []), "leg2": s.get("leg2", [])}


def _secs(value: object) -> str:
    return f"{value:.2f} s" if isinstance(value, int | float) else "-"


@replication.command("status")
@click.option("--json", "as_json", is_flag=True)
@pass_app
def status_command(app: AppContext, as_json: bool) -> None:
    """Each replicated VM: last sync, achieved RPO (last/worst), met/missed, bytes, legs."""
    _, lab = bound(app)
    rows = [_row(lab.name, vm, rec) for vm, rec in procs.records(lab.name).items()]
    if as_json:
        emit_json(rows)
        return
    table(("VM", "State", "Source", "Server", "Target", "RPO", "Last Sync", "RPO last/worst",
           "Met/Missed", "Bytes"),
          [[r["vm"], r["state"], r["source"], r["server"], r["target"], _secs(r["rpo"]),
            time.strftime("%H:%M:%S", time.localtime(r["last_sync"])) if r["last_sync"]
            else "-", f"{_secs(r['rpo_last'])} / {_secs(r['rpo_worst'])}",
            f"{r['met']}/{r['missed']}", human_bytes(r["bytes_total"])] for r in rows])
    for r in rows:
        if r["error"]:
            say(f"{r['vm']}: {r['error']}", style="yellow")
        _legs_table([r["leg1"], r["leg2"]])


@replication.command("stop")
@click.argument("vm_name", metavar="VM")
@pass_app
def stop_command(app: AppContext, vm_name: str) -> None:
    """Stop VM's replication daemon (its replica and state stay)."""
    valid((names.VM, vm_name, "VM name"))
    _, lab = bound(app)
    with reported():
        if not procs.records(lab.name).get(vm_name):
            raise NotFound(f"VM {vm_name} is not replicated", vm=vm_name)
        pids = procs.stop_vm(lab.name, vm_name)
    say(f"Replication of {vm_name} stopped ({len(pids)} process(es))")


@replication.command("recover")
@click.argument("vm_name", metavar="VM")
@click.option("--power-on/--no-power-on", default=True, show_default=True)
@click.option("--json", "as_json", is_flag=True)
@pass_app
def recover_command(app: AppContext, vm_name: str, power_on: bool, as_json: bool) -> None:
    """Stop VM's replication and bring its last consistent replica up on the target."""
    valid((names.VM, vm_name, "VM name"))
    dc, lab = bound(app)
    with reported():
        server = read_json(_status(lab.name, vm_name)).get("server")
        if not server:
            raise NotFound(f"VM {vm_name} is not replicated", vm=vm_name)
        procs.stop_vm(lab.name, vm_name)
        new, replica = recover(lab.name, vm_name, str(server), state_dir(lab.name))
        digest = disk_digest(files.vm_dir(new) / files.read_vmx(new).disk)
        pid = files.power_on(dc, lab.name, vm_name).pid if power_on else None
    consistent = digest == replica["digest"] if replica.get("digest") else None
    out = {"vm": vm_name, "host": new.host, "datastore": new.datastore,
           "generation": replica.get("gen"), "point_in_time": replica.get("taken"),
           "digest": digest, "replica_digest": replica.get("digest"),
           "consistent": consistent,
           "powered_on": power_on, "pid": pid}
    if as_json:
        emit_json(out)
        return
    check_text = {True: "equals the source at that point", False: "DIFFERS from the source",
                  None: "not verified: configure --verify"}[consistent]
    say(f"VM {vm_name} recovered on {new.host}:[{new.datastore}] from generation "
        f"{out['generation']}: disk digest {digest[:16]} ({check_text}); "
        + (f"runs on {new.host} (pid {pid})" if power_on else "powered off"),
        style="bold red" if consistent is False else "green")


COMMANDS = (replication,)
