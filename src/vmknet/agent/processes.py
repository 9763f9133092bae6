"""The agent supervises its host's processes: `process.start | stop | list`.

The agent is the parent of every process the controller asks it to start on
its host (VMs, the NFC server, a vMotion's incoming VM): it starts them from a
fixed table of kinds and argument schemas (`vmknet.supervise.kinds`, never an
argv from the wire), reaps them with one waiter thread each, and records one
that dies unexpectedly (it is listed by `process.list` and becomes the agent's
`died` list, which the heartbeats carry to the controller: an event there,
not the host's error; a crashed VM is the VM's failure, not the host's).

An incoming VM is started only for a vmotion ticket this host's book holds as
the target (the controller delivered it for this migration); the agent opens
its listeners in its own host's stack namespaces (`listeners.py`), passes them
as fds and reports their ports in the reply, so the orchestrator connects only
to sockets that are there. An incoming VM that ends with an exit status (an
aborted migration: the source keeps the VM) did not die unexpectedly; one that
committed the VM is listed as the VM from then on (kind `vm`).

A VM outlives its agent (kill -9, as on an ESXi hostd restart): the next agent
adopts the host's running processes it finds in the registry and /proc. When
the agent ends normally (SIGTERM: `lab down`) it stops its children and the
processes it adopted.
"""

from __future__ import annotations

import atexit
import contextlib
import dataclasses
import threading
import time
import weakref
from typing import Any, Protocol

from ..errors import InvalidArgument, NotFound
from ..lab.registry import run_dir
from ..mgmt import wire
from ..nfc import registry as nfc_registry
from ..paths import inside
from ..processes import alive
from ..supervise import kinds, records, scan
from ..supervise import start as launch
from ..supervise.records import VMX, ProcessRecord
from ..trust.tickets import TicketBook
from ..vm import registry as vm_registry
from ..vsan import config as vsan_config
from . import listeners

STOP_GRACE = 1.5  # s: lab down gives an agent 2 s before SIGKILL; its children go first
MAX_DIED = 32  # unexpected deaths kept for process.list
MAX_SENT = 4  # deaths per heartbeat: a burst goes over a few beats, a heartbeat stays small
# The kinds started only for a ticket of the controller in this host's book (SEC-4), and
# the ticket's kind; each becomes the VM when its operation commits.
TICKET_KINDS = {"incoming": "vmotion", "ft-secondary": "ft"}


class _Guard(Protocol):
    @property
    def lab(self) -> str: ...


class Agent(Protocol):
    """What the supervisor needs of `service.Agent` (which imports this module)."""

    error: str | None
    book: TicketBook

    @property
    def host(self) -> str: ...

    @property
    def guard(self) -> _Guard: ...


class Supervisor:
    def __init__(self, agent: Agent, lab: str, host: str) -> None:
        self.agent, self.lab, self.host = agent, lab, host
        self._lock = threading.Lock()
        self.children: dict[tuple[str, str], launch.Child] = {}
        self.adopted: dict[tuple[str, str], ProcessRecord] = {}
        self.died: list[dict[str, Any]] = []
        self._stopping: set[int] = set()  # pids we asked to stop: their death is expected
        self._starting: set[tuple[str, str]] = set()  # (kind, name) between check and start
        self.adopt()

    def adopt(self) -> list[ProcessRecord]:
        """Take over the host's running processes that are not our children (a restart)."""
        found = []
        with self._lock:
            for rec in scan.find(self.lab, self.host):
                key = (rec.kind, rec.name)
                # One being started is not a stranger's: its record is in the registry
                # before it is in `children` (a process.list in between adopted it too).
                if key not in self.children and key not in self.adopted \
                        and key not in self._starting:
                    self.adopted[key] = rec
                    records.save(rec)
                    found.append(rec)
        return found

    # -- the RPC methods ------------------------------------------------------------------

    def start(self, params: dict[str, Any]) -> dict[str, Any]:
        kind, name, args = params.get("kind"), params.get("name"), params.get("args", {})
        module, argv = kinds.command(kind, name, args, self.lab, self.host)
        assert isinstance(kind, str) and isinstance(name, str)  # checked by command()
        assert isinstance(args, dict)
        if kind in TICKET_KINDS:
            self._check_ticket(kind, str(args["ticket"]))
        if kind == "vsan":  # the cluster key came over management TLS: a 0600 file, not argv
            vsan_config.store_key(self.lab, str(args["cluster"]), bytes.fromhex(args["key"]))
        with self._lock:
            self._promote()
            self._forget_dead()
            key = (kind, name)
            running = self.children.get(key)
            other = running.record if running else self.adopted.get(key)
            if other is None:  # a VM runs once in the whole lab (incoming, or elsewhere)
                same = ("vm", "incoming") if kind == "vm" else (kind,)
                other = next((r for r in scan.find(self.lab, None if kind == "vm" else self.host)
                              if r.kind in same and r.name == name), None)
            if other is not None:
                raise InvalidArgument(f"{kind} {name} already runs on {other.host} "
                                      f"(pid {other.pid})", code="AlreadyExists")
            if key in self._starting:  # the check and the start are one step for a caller
                raise InvalidArgument(f"{kind} {name} is being started on {self.host}",
                                      code="AlreadyExists")
            self._starting.add(key)
        try:
            return self._start(kind, name, args, module, argv, key)
        finally:
            with self._lock:
                self._starting.discard(key)

    def _start(self, kind: str, name: str, args: dict[str, Any], module: str,
               argv: list[str], key: tuple[str, str]) -> dict[str, Any]:
        spec = kinds.TABLE[kind]
        log = inside(run_dir(), self.lab) / "processes" / f"{kind}-{name}.log"
        # An incoming VM's listeners: open before it starts, so they exist when the reply
        # reaches the orchestrator; the child holds the only copies once it runs, so its
        # end (an abort, process.stop) closes them.
        wanted = kinds.sockets(kind, args)
        opened = listeners.open_all(self.lab, self.host, wanted)
        try:
            tail = [f"--{flag}=" + ",".join(str(o.sock.fileno()) for o in opened
                                            if o.want.flag == flag)
                    for flag in dict.fromkeys(w.flag for w in wanted)]
            child = launch.start(kind, self.lab, self.host, name, module,
                                 [*argv, *tail, *(["--foreground"] if module == VMX else [])],
                                 log, ready_fd=spec.ready_fd, ready=self._ready_check(kind),
                                 pass_fds=[o.sock.fileno() for o in opened])
            listening = [o.row() for o in opened]
        finally:
            listeners.close_all(opened)
        with self._lock:
            self.children[key] = child
        threading.Thread(target=self._reap, args=(child,), daemon=True,
                         name=f"reap-{kind}-{name}").start()
        return child.record.to_dict() | ({"listening": listening} if listening else {})

    def _check_ticket(self, kind: str, ticket_id: str) -> None:
        """An incoming VM only for a migration to this host the controller announced; an FT
        secondary only for an FT pair it announced with this host as the secondary."""
        want = TICKET_KINDS[kind]
        ticket = self.agent.book.get(ticket_id)
        if ticket is None or ticket.kind != want or ticket.target != self.host:
            raise InvalidArgument(f"No {want} ticket {ticket_id[:8]}... for {self.host} in "
                                  f"its ticket book: a {kind} process starts only for an "
                                  "operation the controller announced", code="SEC-4")

    def _promote(self) -> None:
        """An incoming VM that committed the migration, or an FT secondary that went live,
        is the VM now (under the lock)."""
        for key in [k for k in self.children if k[0] in TICKET_KINDS]:
            child = self.children[key]
            vm = self._as_vm(child.record)
            if vm is not None:
                child.record = vm
                del self.children[key]
                self.children[("vm", vm.name)] = child
        for key in [k for k in self.adopted if k[0] in TICKET_KINDS]:
            vm = self._as_vm(self.adopted[key])
            if vm is not None:
                del self.adopted[key]
                self.adopted[("vm", vm.name)] = vm

    def _as_vm(self, rec: ProcessRecord) -> ProcessRecord | None:
        """`rec` as a VM when the VM registry names its pid (it published the guest)."""
        try:
            if vm_registry.load(self.lab, rec.name).pid != rec.pid:
                return None
        except NotFound:
            return None
        vm = dataclasses.replace(rec, kind="vm")
        records.save(vm)
        records.remove(rec)
        return vm

    def _ready_check(self, kind: str) -> Any:
        if kind != "nfc":
            return None

        def listening(pid: int) -> bool:  # the server records itself once it listens
            data = records.read_json(nfc_registry.record_path(self.lab, self.host))
            return data.get("pid") == pid

        return listening

    def stop(self, params: dict[str, Any]) -> dict[str, Any]:
        kind, name = str(params.get("kind", "")), str(params.get("name", ""))
        with self._lock:
            self._promote()
            child = self.children.get((kind, name))
            rec = child.record if child else self.adopted.pop((kind, name), None)
            if rec is None:
                raise NotFound(f"No {kind} process {name!r} on {self.host}", kind=kind[:32])
            self._stopping.add(rec.pid)
        return {"stopped": launch.stop([rec], STOP_GRACE)}

    def listing(self, _params: dict[str, Any]) -> dict[str, Any]:
        self.adopt()  # a process started around the agent (a migration's target) counts too
        with self._lock:
            self._promote()
            self._forget_dead()
            rows = [c.record.to_dict() | {"child": True} for c in self.children.values()]
            rows += [r.to_dict() | {"child": False} for r in self.adopted.values()]
            return {"host": self.host, "processes": sorted(rows, key=lambda r: (
                r["kind"], r["name"])), "died": list(self.died)}

    # -- life ------------------------------------------------------------------------------

    def _forget_dead(self) -> None:
        for key, rec in list(self.adopted.items()):
            if not alive(rec.pid):
                del self.adopted[key]  # not ours to reap: it ended or moved (a migration)
                with contextlib.suppress(OSError, InvalidArgument):
                    records.remove(rec)

    def _reap(self, child: launch.Child) -> None:
        code = child.proc.wait()
        with self._lock:
            self._promote()  # an incoming VM that became the VM dies as the VM
            for key in [k for k, c in self.children.items() if c is child]:
                del self.children[key]
            kind, name = child.record.kind, child.record.name
            # An incoming VM that exits with a status aborted its migration (the source
            # keeps the VM, the orchestrator reports why): not a death.
            expected = (child.record.pid in self._stopping or code == 0
                        or (kind == "incoming" and code > 0))
            self._stopping.discard(child.record.pid)
            if not expected:
                death = {"kind": kind, "name": name, "pid": child.record.pid,
                         "exit": code, "at": time.time()}
                self.died = [*self.died, death][-MAX_DIED:]
        with contextlib.suppress(OSError, InvalidArgument):
            records.remove(child.record)

    def stop_all(self) -> list[int]:
        """Stop every child and adopted process (the agent ends: SIGTERM, lab down)."""
        with self._lock:
            recs = [c.record for c in self.children.values()] + list(self.adopted.values())
            self._stopping.update(r.pid for r in recs)
            self.adopted.clear()
        return launch.stop(recs, STOP_GRACE) if recs else []



_SUPERVISORS: weakref.WeakKeyDictionary[Any, Supervisor] = weakref.WeakKeyDictionary()
_GUARD = threading.Lock()


def supervisor(agent: Agent) -> Supervisor:
    """The agent's supervisor, made (and the host's processes adopted) on first use."""
    with _GUARD:
        sup = _SUPERVISORS.get(agent)
        if sup is None:
            sup = Supervisor(agent, agent.guard.lab, agent.host)
            _SUPERVISORS[agent] = sup
            # The agent ends by returning from main after SIGTERM: its children go with it.
            atexit.register(sup.stop_all)
        return sup


def deaths_since(agent: Agent, acknowledged: float) -> list[dict[str, Any]]:
    """The unexpected deaths the controller has not acknowledged (newest `at` it echoed)."""
    sup = _SUPERVISORS.get(agent)  # none made yet: nothing has died under this agent
    return [] if sup is None else [d for d in sup.died if d["at"] > acknowledged][-MAX_SENT:]


def handlers(agent: Agent) -> dict[str, wire.Handler]:
    """The agent's process methods (Agent.handlers() merges them into its table)."""
    if not agent.guard.lab:
        return {}  # a host outside a lab runs no lab processes
    sup = supervisor(agent)
    return {"process.start": sup.start, "process.stop": sup.stop, "process.list": sup.listing}
