"""The agent's reconcile loop (MGMT-3): its host converges to the desired state by itself.

Once at start, whenever the heartbeat reply names a generation other than the
one the agent last converged to, and every `INTERVAL` seconds, the agent asks
the controller for its host's part of the committed inventory (`desired`,
over a fresh mutual-TLS management connection; the state itself comes only
when it differs from the one the agent holds), reads its own namespaces and
its wires' far ends, plans with the dataplane's planner and runs the ops, all
or nothing. Whatever stopped it before (kill -9 half way through a rollout's
part, a hand edit with `ip`), the next pass repairs it.

It never fights a rollout: no pass while the rollback guard holds a change
(armed, or confirmed and waiting for its rollout's outcome), and the kernel
lock keeps a pass and a rollout's steps apart. Right after a change was
released the store has not committed it yet, so only a new generation starts
a pass then, not the timer. Every op must be the host's own (ownership, as
the guard checks an undo), and a pass that would cut the management adapter
the agent reached the controller through is refused (MGMT-2's spirit): the
host reports Failing with the reason instead.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from ipaddress import ip_address, ip_interface
from typing import Any, Protocol

from ..controller.desired import host_part, unpack_state
from ..dataplane import naming
from ..dataplane.base import Backend
from ..dataplane.kops import (
    DeleteAddress,
    DeleteLink,
    DeleteNamespace,
    DeleteRoute,
    DeleteRule,
    KernelOp,
    ModifyLink,
)
from ..dataplane.kstate import KernelState
from ..dataplane.ownership import op_owner, wire_owners
from ..dataplane.plan import describe, plan
from ..errors import VmknetError

INTERVAL = 30.0  # s between passes when nothing asks for one
SETTLE = 15.0  # s after a released change during which only a new generation starts a pass
RETRY = 5.0  # s after a failed pass before the next one
OFFER_TTL = 2.0  # s a heartbeat's prefetched state stays news (heartbeats are 1 s apart)
HOLD_POLL = 1.0  # s between looks while the guard holds a change
MAX_STATE = 20_000  # objects in a host's desired state
MAX_REPORTED = 20  # repaired ops named in the report (the event)
NICE = 10  # the pass thread's niceness

Key = tuple[str, str]


# -- pure decisions -------------------------------------------------------------------------


def should_run(*, holding: bool, told: int | None, realised: int | None, due: bool,
               settling: bool) -> bool:
    """Whether a pass may run now. `holding`: the guard holds a change (a rollout is in
    flight on this host); `told`: the generation the last heartbeat reply named (None: not
    heard yet); `due`: the timer (or the start) asks; `settling`: a change was released so
    recently that the store may not have committed it yet."""
    if holding:
        return False
    if told is None or told != realised:
        return True
    return due and not settling


def management_path(state: KernelState, addresses: Collection[str]) -> set[Key]:
    """The links a management frame crosses inside the host: the adapters holding one of
    `addresses`, their veth peers, the bridges they hang on with those bridges' ports, and
    the wires' far ends (the segments themselves are the fabric's, not in a host's part)."""
    wanted = {ip_address(a) for a in addresses}
    todo = [(a.ns, a.ifname) for a in state.addresses if ip_interface(a.cidr).ip in wanted]
    path: set[Key] = set()
    while todo:
        key = todo.pop()
        link = state.links.get(key)
        if key in path or link is None:
            continue
        path.add(key)
        if link.peer is not None:
            todo.append(link.peer)
        if link.master is not None:
            todo.append((link.ns, link.master))
        if link.kind == "bridge":
            todo += [k for k, v in state.links.items() if k[0] == link.ns and v.master == link.name]
    return path


def cuts(op: KernelOp, path: set[Key], addresses: Collection[str]) -> bool:
    """Whether `op` could cut the management path (`management_path`)."""
    spaces = {ns for ns, _ in path}
    if isinstance(op, DeleteNamespace):
        return op.ns in spaces
    if isinstance(op, DeleteLink):
        return op.link.key in path or (op.peer_link is not None and op.peer_link.key in path)
    if isinstance(op, ModifyLink):
        return op.before.key in path and (op.after.master != op.before.master
                                          or not op.after.up)
    if isinstance(op, DeleteAddress):
        return str(ip_interface(op.address.cidr).ip) in {str(ip_address(a)) for a in addresses}
    if isinstance(op, DeleteRoute):
        return op.route.ns in spaces
    if isinstance(op, DeleteRule):
        return op.rule.ns in spaces
    return False


# -- the loop -------------------------------------------------------------------------------


class Guard(Protocol):
    """What of `rollback.RollbackGuard` a pass needs."""

    def holding(self) -> bool: ...

    def released_ago(self) -> float | None: ...

    def allowed(self, op: KernelOp) -> bool: ...


@dataclass
class Outcome:
    generation: int
    ops: list[KernelOp]


class Reconciler:
    def __init__(self, lab: str, host: str, guard: Guard, kernel: threading.Lock,
                 fetch: Callable[[str | None], dict[str, Any]],
                 report: Callable[[dict[str, Any]], None],
                 backend: Callable[[], Backend], links: Callable[[], Sequence[tuple[str, str]]],
                 interval: float = INTERVAL) -> None:
        self.lab, self.host, self.guard, self.kernel = lab, host, guard, kernel
        self._fetch, self._report, self._backend, self._links = fetch, report, backend, links
        self.interval = interval
        self.told: int | None = None  # what the last heartbeat reply named
        self.realised: int | None = None  # the generation the last good pass converged to
        self.error: str | None = None  # why the last pass failed or was refused
        self.passes = 0
        # The last desired state fetched and its digest: the controller sends it again only
        # when it changed (`have`).
        self._have: tuple[str, KernelState] | None = None
        self._converged: str | None = None  # digest of the state the last good pass reached
        self._lock = threading.Lock()
        self._asked: int | None = None  # the generation a heartbeat was asked to fetch for
        self._offered: dict[str, Any] | None = None
        self._offered_at = 0.0  # time.monotonic() of the offer
        self._wake = threading.Event()
        self._stop = threading.Event()

    def heard(self, generation: object) -> dict[str, Any] | None:
        """The heartbeat reply's generation. The first time a new one is heard, the params
        of a `desired` call the heartbeat may make on its own connection (no handshake of a
        fresh one); the caller then must `offer` the reply, or None, which wakes the loop."""
        if not isinstance(generation, int) or isinstance(generation, bool):
            return None
        with self._lock:
            self.told = generation
            if generation == self.realised or generation == self._asked:
                return None
            self._asked = generation
            return {"have": self._have[0] if self._have else None}

    def offer(self, reply: dict[str, Any] | None) -> None:
        """The heartbeat's `desired` reply (None: it made none): the next pass uses it."""
        with self._lock:
            self._offered = reply
            self._offered_at = time.monotonic()
        self._wake.set()

    def _take_offer(self) -> dict[str, Any] | None:
        """The offered reply when it is still news: the generation last heard, offered
        within OFFER_TTL, and a "same" only for the state this agent holds. An offer the
        pass it woke did not take (that pass had fetched already) is history: while the
        heartbeats are cut (a change being rolled back) `told` does not move, so the
        generation check alone would let a later pass realise a superseded state."""
        with self._lock:
            reply, self._offered = self._offered, None
            age = time.monotonic() - self._offered_at
        if reply is None or reply.get("generation") != self.told or age > OFFER_TTL:
            return None
        if reply.get("same") is True and (self._have is None
                                          or self._have[0] != reply.get("digest")):
            return None
        return reply

    def start(self) -> threading.Thread:
        t = threading.Thread(target=self._loop, daemon=True, name="reconcile")
        t.start()
        return t

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()

    def _loop(self) -> None:
        # Background work: a rollout's steps and the CLI's commands on this machine come first.
        with contextlib.suppress(OSError):
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), NICE)
        next_due = time.monotonic()  # once at start
        while not self._stop.is_set():
            now = time.monotonic()
            due = now >= next_due
            if self.guard.holding():
                self._stop.wait(HOLD_POLL)
                continue
            if should_run(holding=False, told=self.told, realised=self.realised, due=due,
                          settling=self._settling()):
                ok = self.run_once(due)
                next_due = time.monotonic() + (self.interval if ok else RETRY)
                if not ok:  # no tight retry on every heartbeat of a pass that fails
                    self._stop.wait(RETRY)
            self._wake.clear()
            self._wake.wait(max(0.0, min(next_due - time.monotonic(), self.interval)))

    def _settling(self) -> bool:
        ago = self.guard.released_ago()
        return ago is not None and ago < SETTLE

    def run_once(self, due: bool = True) -> bool:
        """One pass; False when it failed or was refused (the reason is in `error`). `due`
        False (a new generation woke it): when the host's desired state is the one the last
        pass converged to, the generation moved for another host or another object, and
        the kernel is not read; drift made by hand is the timer's to find."""
        self.passes += 1
        try:
            reply = self._take_offer() or self._fetch(self._have[0] if self._have else None)
        except (OSError, VmknetError):
            return False  # the controller is away: nothing to run against, nobody to tell
        try:
            with self.kernel:
                if self.guard.holding():
                    return True  # a rollout got here first; its outcome decides
                done = self._converge(reply, due)
        except VmknetError as err:
            self.error = f"reconcile: {' '.join(err.message.split())}"[:500]
            return False
        except Exception as err:  # a kernel error of any kind: reported, the agent lives on
            self.error = f"reconcile: {' '.join(str(err).split())}"[:500]
            return False
        self.error, self.realised = None, done.generation
        if done.ops:
            report = {"generation": done.generation, "ops": len(done.ops),
                      "repaired": [describe(op) for op in done.ops[:MAX_REPORTED]]}
            with contextlib.suppress(OSError, VmknetError):  # the repair stands; only its
                self._report(report)  # event would be lost
        return True

    def _converge(self, reply: dict[str, Any], due: bool = True) -> Outcome:
        generation = reply.get("generation")
        hosts = reply.get("hosts")
        if not isinstance(generation, int) or not isinstance(hosts, list):
            raise VmknetError("The controller's desired state has no generation",
                              code="ProtocolError")
        names = [str(h) for h in hosts]
        digest = str(reply.get("digest", ""))
        if reply.get("same") is True and self._have is not None and self._have[0] == digest:
            if not due and self.realised is not None and self._converged == digest:
                return Outcome(generation, [])
            desired = self._have[1]
        else:
            desired = unpack_state(reply.get("state"), MAX_STATE)
            self._have = (digest, desired)
        backend = self._backend()
        lab_state = backend.read(naming.prefix(self.lab))
        current = host_part(lab_state, self.lab, self.host, names)
        # The controller cut the desired state already; the agent cuts it again (it takes
        # nothing on trust) and checks every op below.
        desired = host_part(desired, self.lab, self.host, names)
        ops = plan(current, desired)
        wires = wire_owners([current, desired], self.lab, names)
        foreign = [op for op in ops if op_owner(op, self.lab, names, wires) != self.host
                   or not self.guard.allowed(op)]
        if foreign:
            raise VmknetError(f"Kernel op outside host {self.host}: {describe(foreign[0])}",
                              code="NotAuthorized")
        addresses = [a for a, _ in self._links()]
        path = management_path(current, addresses)
        cutting = [op for op in ops if cuts(op, path, addresses)]
        if cutting:
            raise VmknetError(
                f"refused: repairing {self.host} would cut its management adapter "
                f"({describe(cutting[0])}); run 'vmknet lab status --repair' (MGMT-2)",
                code="MGMT-2")
        _run(backend, ops, self.host)
        self._converged = digest
        return Outcome(generation, ops)


def _run(backend: Backend, ops: list[KernelOp], host: str) -> None:
    """All or nothing: a failing step undoes the steps before it."""
    for step, op in enumerate(ops):
        try:
            backend.execute(op)
        except Exception as err:
            for done in reversed(ops[:step]):
                try:
                    backend.execute(done.inverse())
                except Exception:  # keep undoing: one stuck step must not stop the rest
                    continue
            raise VmknetError(f"{host}: step {step + 1} of {len(ops)} failed "
                              f"({describe(op)}): {' '.join(str(err).split())}; the "
                              f"{step} steps before it were undone",
                              code="DataplaneError") from err
