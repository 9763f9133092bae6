"""`migrate()`: live-migrate a lab VM to another host (what `vmknet vmotion` runs).

    report = migrate(dc, lab, "web01", "esx02", max_downtime=0.1, encryption="required")

The orchestrator never touches guest memory. It asks resolve() for the adapter
pairs (EX-5 / REQ-1 and NoPath refuse here, before anything starts), makes the
target's listeners with `traffic.sockets.listen` (vMotion on the target's
effective vMotion adapters, the agent on its management adapters), starts the
incoming VM process with those listeners, opens one connection per pair with
`traffic.sockets.connect` and hands all of them to the source VM process over
its control socket (SCM_RIGHTS). The source VM runs pre-copy and streams its
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

from ..errors import InvalidArgument, RuleViolation
from ..model import Datacenter, Service
from ..resolve import Flow, resolve
from ..traffic.place import LabRef, lab_name
from ..traffic.sockets import Connection, close_all, connect, listen
from ..trust.issuer import issuer_for
from ..trust.tickets import present
from ..vm import control, manage, registry
from ..vm.launch import spawn
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
    flows = resolve(dc, Service.VMOTION, rec.host, target)  # EX-5 / REQ-1, NoPath
    resolve(dc, Service.MANAGEMENT, rec.host, target)  # the agents meet on management
    # SEC-4: one ticket for this migration, one use per connection (management + streams);
    # the AES key rides inside it, so it never crosses the management connection.
    key = crypto.new_key() if encryption != crypto.DISABLED else None
    ticket = issuer_for(name).issue("vmotion", rec.host, target, uses=len(flows) + 1, key=key)
    vm_listen = listen(dc, lab, target, Service.VMOTION, port)
    mgmt_port = CONTROL_PORT if mgmt_port is None else mgmt_port
    mgmt_listen = listen(dc, lab, target, Service.MANAGEMENT, mgmt_port)
    try:
        target_pid = spawn("incoming", name, vm, target, [
            f"--mgmt-fds={','.join(str(x.sock.fileno()) for x in mgmt_listen)}",
            f"--vm-fds={','.join(str(x.sock.fileno()) for x in vm_listen)}",
            f"--ticket={ticket.id}"],
            pass_fds=[x.sock.fileno() for x in (*mgmt_listen, *vm_listen)])
    finally:
        close_all([*vm_listen, *mgmt_listen])  # the incoming VM has its own copies
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
        _kill(target_pid)
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
        _kill(target_pid)  # the source keeps the VM: the half-received copy goes
        if report.code == "SEC-1":
            raise RuleViolation("SEC-1", report.reason, vm=vm, target=target)
    return report


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


def _kill(pid: int) -> None:
    deadline = time.monotonic() + KILL_TIMEOUT
    while registry.alive(pid) and time.monotonic() < deadline:
        time.sleep(0.02)  # an aborted incoming VM exits by itself
    if registry.alive(pid):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
