"""Network rollback on the host (MGMT-2), as ESXi does it.

Before a change touches this host, the controller arms the agent with the
undo of the host's part (the inverse ops, in order) and a timeout. The agent
then keeps opening fresh connections to the controller over its management
adapters and asking `confirm`: "pending" while the change is being applied,
"confirmed" once it is applied and this connection got through, so the host
is still managed, and "abandoned" when the change failed elsewhere (its own
apply undid it). If no "confirmed" or "abandoned" arrives before the
deadline, the change cut the host off: the agent runs the undo itself and
reports a NetworkRollbackEvent as soon as it reaches the controller again.

The agent takes only ops in its own namespaces or in the physical network's
namespace (its wires' far ends): nothing else of the lab is its to touch.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..dataplane import kcodec, naming
from ..dataplane.base import Backend
from ..dataplane.kops import KernelOp
from ..dataplane.plan import describe
from ..errors import DataplaneError, InvalidArgument
from ..supervise.records import write_json
from . import faults

CONFIRMED, ABANDONED, PENDING = "confirmed", "abandoned", "pending"
RETRY = 0.1  # s between confirm attempts (each a new TLS connection)
# s the agent first waits for the controller's own word (`confirmed`, pushed over the
# controller's kept connection) before it opens connections of its own to ask.
PUSH_WAIT = 1.0
MAX_UNDO_OPS = 10_000
MAX_TIMEOUT = 600.0

# (generation, seconds left) -> the controller's answer; raises when it cannot be reached
Confirm = Callable[[str, float], str]
Report = Callable[["RolledBack"], None]  # tells the controller; raises when it cannot
REPORT_FOR = 60.0  # s the guard itself keeps trying to report, before the heartbeat takes over


KEEP = 32  # confirmed changes whose undo is kept, for a rollout that stops later
SETTLE_POLL = 1.0  # s between questions about a confirmed part's rollout outcome
RELEASED_OUTCOME, REVERTED_OUTCOME = "released", "reverted"
RESUME_GRACE = 1.0  # s to hear from the controller about a change whose deadline passed


@dataclass
class Armed:
    generation: str
    undo: list[KernelOp]
    deadline: float  # time.monotonic()
    timeout: float = 30.0  # s: also how long a confirmed part waits for the rollout's outcome
    cancel: threading.Event = field(default_factory=threading.Event)
    settled: threading.Event = field(default_factory=threading.Event)  # the controller said
    undoing: bool = False  # past the deadline: no confirmation can stop the undo any more


@dataclass
class RolledBack:
    generation: str
    ops: int
    failures: list[str]
    seconds: float  # from arming to the end of the undo

    def to_dict(self) -> dict[str, Any]:
        return {"generation": self.generation, "ops": self.ops, "failures": self.failures,
                "seconds": round(self.seconds, 2)}


def _undo(backend: Backend, undo: list[KernelOp]) -> list[str]:
    failures = []
    for op in undo:
        try:
            backend.execute(op)
        except Exception as err:  # keep undoing: one stuck step must not stop the rest
            failures.append(f"{describe(op)}: {' '.join(str(err).split())}")
    return failures


class RollbackGuard:
    def __init__(self, lab: str, host: str, confirm: Confirm, report: Report,
                 backend: Callable[[], Backend], folder: Path | None = None,
                 outcome: Callable[[str], str] | None = None) -> None:
        # Armed changes are also on disk (`<folder>/<generation>.json`): an agent killed while
        # it waits for its confirmation picks the wait up again when it restarts (`resume`).
        self._folder = folder
        self.lab, self.host = lab, host
        self._confirm = confirm
        self._report = report
        self._outcome = outcome  # generation -> pending | released | reverted (raises: away)
        self._backend = backend
        self._lock = threading.Lock()
        self._armed: dict[str, Armed] = {}
        # Confirmed changes, undo kept: a rollout that fails on a later host reverts them.
        self._kept: dict[str, list[KernelOp]] = {}
        self.reports: list[RolledBack] = []  # not yet told to the controller
        self._released: float | None = None  # time.monotonic() of the last release

    def allowed(self, op: KernelOp) -> bool:
        """Whether `op` stays in this host's namespaces and the far ends of its wires."""
        own = naming.host_ns(self.lab, self.host)
        namespaces = {str(getattr(op, "ns", ""))}
        for attr in ("link", "peer_link", "before", "after", "address", "route", "rule"):
            value = getattr(op, attr, None)
            if value is not None and hasattr(value, "ns"):
                namespaces.add(str(value.ns))
        namespaces.discard("")
        return bool(namespaces) and all(
            ns == own or ns.startswith(own + ".") or ns == naming.pnet_ns(self.lab)
            for ns in namespaces)

    def _decode(self, raw: object, what: str) -> list[KernelOp]:
        if not isinstance(raw, list) or len(raw) > MAX_UNDO_OPS:
            raise InvalidArgument(f"{what}: a list of at most {MAX_UNDO_OPS} kernel ops")
        ops = [kcodec.decode_op(op) for op in raw]
        foreign = [describe(op) for op in ops if not self.allowed(op)]
        if foreign:
            raise InvalidArgument(f"Kernel op outside host {self.host}: {foreign[0]}",
                                  code="NotAuthorized")
        return ops

    @staticmethod
    def _params(params: dict[str, Any]) -> tuple[str, float]:
        generation = str(params.get("generation", ""))[:64]
        timeout = params.get("timeout")
        if not generation or not isinstance(timeout, int | float) \
                or not 0 < timeout <= MAX_TIMEOUT:
            raise InvalidArgument(f"A change needs a generation and a timeout of "
                                  f"0-{MAX_TIMEOUT} s")
        return generation, float(timeout)

    def arm(self, params: dict[str, Any]) -> dict[str, Any]:
        """Watch a change someone else applies to this host, holding its undo."""
        generation, timeout = self._params(params)
        undo = self._decode(params.get("undo"), "undo")
        self._watch_later(generation, undo, timeout)
        return {"armed": generation, "ops": len(undo)}

    def realise(self, params: dict[str, Any]) -> dict[str, Any]:
        """Run this host's part of a change, all or nothing, then watch it (MGMT-2)."""
        generation, timeout = self._params(params)
        ops = self._decode(params.get("ops"), "ops")
        expires = params.get("expires")
        if isinstance(expires, int | float) and time.time() > expires:
            # It waited in a socket while this agent was stopped: the controller gave up on
            # it long ago and reverted the others; running it now would be drift.
            raise InvalidArgument(f"Change {generation} came too late: not run",
                                  code="StaleRequest")
        backend = self._backend()
        started = time.monotonic()
        for step, op in enumerate(ops):
            try:
                backend.execute(op)
            except Exception as err:
                failures = _undo(backend, [o.inverse() for o in reversed(ops[:step])])
                raise DataplaneError(
                    f"{self.host}: step {step + 1} of {len(ops)} failed ({describe(op)}): "
                    f"{' '.join(str(err).split())}; the {step} steps before it were rolled "
                    "back", host=self.host, rollback_failures=failures) from err
        self._watch_later(generation, [o.inverse() for o in reversed(ops)], timeout)
        return {"ops": len(ops), "seconds": round(time.monotonic() - started, 4)}

    def revert(self, params: dict[str, Any]) -> dict[str, Any]:
        """Undo a kept (confirmed) change now: a later host of the rollout failed."""
        generation = str(params.get("generation", ""))
        with self._lock:
            armed = self._armed.pop(generation, None)
            undo = self._kept.pop(generation, None)
        if armed is not None:
            armed.cancel.set()
            undo = armed.undo
        self._forget(generation)
        failures = _undo(self._backend(), undo or [])
        return {"ops": len(undo or []), "failures": failures}

    def confirmed(self, params: dict[str, Any]) -> dict[str, Any]:
        """The controller's word that the change stands, over its kept connection: that it
        arrived after the change is the proof that the management network still works."""
        generation = str(params.get("generation", ""))
        with self._lock:
            armed = self._armed.get(generation)
            if armed is None or armed.undoing:
                return {"confirmed": False}  # unknown, or already being reverted
            armed.settled.set()
        self._disarm(generation, keep=armed.undo)
        return {"confirmed": True}

    def release(self, params: dict[str, Any]) -> dict[str, Any]:
        generation = str(params.get("generation", ""))
        with self._lock:
            released = self._kept.pop(generation, None) is not None
            self._released = time.monotonic()
        self._forget(generation)
        return {"released": released}

    def _watch_later(self, generation: str, undo: list[KernelOp], timeout: float) -> None:
        armed = Armed(generation, undo, time.monotonic() + timeout, timeout)
        self._save(armed, time.time() + timeout)
        with self._lock:
            self._armed[generation] = armed
        threading.Thread(target=self._watch, args=(armed,), daemon=True).start()

    def _file(self, generation: str) -> Path | None:
        if self._folder is None or not generation.isalnum():
            return None
        return self._folder / f"{generation}.json"

    def _save(self, armed: Armed, deadline: float, state: str = "armed") -> None:
        """On disk, so that a restarted agent goes on: `armed` waits for its confirmation,
        `kept` (confirmed) for its rollout's outcome."""
        path = self._file(armed.generation)
        if path is None:
            return
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        write_json(path, {"generation": armed.generation, "deadline": deadline,
                          "timeout": armed.timeout, "state": state,
                          "undo": [kcodec.encode(op) for op in armed.undo]}, mode=0o600)

    def _forget(self, generation: str) -> None:
        path = self._file(generation)
        if path is not None:
            with contextlib.suppress(OSError):
                path.unlink()

    def resume(self) -> list[str]:
        """Watch again what was armed when the agent stopped; the generations resumed. One
        past its deadline gets one last chance to hear "confirmed" or "abandoned" (the
        controller may have settled it meanwhile) before the undo runs."""
        if self._folder is None or not self._folder.is_dir():
            return []
        resumed = []
        for path in sorted(self._folder.glob("*.json")):
            try:
                data = json.loads(path.read_text())
                undo = self._decode(data["undo"], "undo")
                generation, left = str(data["generation"]), float(data["deadline"]) - time.time()
                timeout = float(data.get("timeout", left))
            except (OSError, ValueError, KeyError, TypeError, InvalidArgument):
                path.unlink(missing_ok=True)  # not ours, or half written: nothing to keep
                continue
            if data.get("state") == "kept":  # confirmed: its rollout's outcome is still due
                self._keep(generation, undo, timeout)
            else:
                self._watch_later(generation, undo, max(left, RESUME_GRACE))
            resumed.append(generation)
        return resumed

    def _watch(self, armed: Armed) -> None:
        faults.point("watch")  # a kill point: the part ran and is armed on disk
        started = time.monotonic()
        armed.settled.wait(min(PUSH_WAIT, max(0.0, armed.deadline - started)))
        while (left := armed.deadline - time.monotonic()) > 0 and not armed.cancel.is_set() \
                and not armed.settled.is_set():
            try:
                answer = self._confirm(armed.generation, left)
            except Exception:  # unreachable: that is what this loop waits out
                answer = PENDING
            if answer in (CONFIRMED, ABANDONED):
                self._disarm(armed.generation, keep=armed.undo if answer == CONFIRMED else None)
                return
            armed.cancel.wait(RETRY)
        with self._lock:
            if armed.cancel.is_set() or armed.settled.is_set():
                return
            armed.undoing = True
        failures = _undo(self._backend(), armed.undo)
        self._disarm(armed.generation)
        done = RolledBack(armed.generation, len(armed.undo), failures,
                          time.monotonic() - started)
        until = time.monotonic() + REPORT_FOR
        while time.monotonic() < until and not armed.cancel.is_set():
            try:
                self._report(done)  # at once: the controller is waiting for this verdict
                return
            except Exception:
                armed.cancel.wait(RETRY)
        with self._lock:
            self.reports.append(done)  # the heartbeat tells it when the controller is back

    def _disarm(self, generation: str, keep: list[KernelOp] | None = None) -> None:
        with self._lock:
            armed = self._armed.pop(generation, None)
        if keep is None:
            self._forget(generation)
        else:
            self._keep(generation, keep, armed.timeout if armed is not None else 30.0)

    def _keep(self, generation: str, undo: list[KernelOp], timeout: float) -> None:
        """A confirmed part: its undo stays (memory and disk) until the rollout's outcome."""
        self._save(Armed(generation, undo, 0.0, timeout), 0.0, state="kept")
        with self._lock:
            if generation in self._kept:
                return  # confirmed twice (its own ask and the controller's word): one wait
            self._kept[generation] = undo
            evicted = list(self._kept)[:-KEEP]
            for old in evicted:
                del self._kept[old]
        for old in evicted:
            self._forget(old)
        if self._outcome is not None:
            threading.Thread(target=self._settle, args=(generation, timeout),
                             daemon=True).start()

    def _settle(self, generation: str, timeout: float) -> None:
        """A confirmed part waits for its rollout's outcome: released (drop the undo) or
        reverted (run it). A controller that stays away for `timeout` never committed it
        as far as this host can tell: the part is undone, as MGMT-2 would."""
        assert self._outcome is not None
        heard = time.monotonic()
        while self._still_kept(generation):
            time.sleep(SETTLE_POLL)
            try:
                answer = self._outcome(generation)
                heard = time.monotonic()
            except Exception:  # away: that is what the timeout waits out
                answer = "pending" if time.monotonic() - heard < timeout else REVERTED_OUTCOME
            if answer == RELEASED_OUTCOME:
                self.release({"generation": generation})
                return
            if answer == REVERTED_OUTCOME:
                self.revert({"generation": generation})
                return

    def _still_kept(self, generation: str) -> bool:
        with self._lock:
            return generation in self._kept

    def holding(self) -> bool:
        """A change is in flight on this host: armed, or confirmed and waiting for its
        rollout's outcome. The reconcile loop keeps off the kernel meanwhile (MGMT-3)."""
        with self._lock:
            return bool(self._armed or self._kept)

    def released_ago(self) -> float | None:
        """Seconds since a change was last released (None: never)."""
        with self._lock:
            return None if self._released is None else time.monotonic() - self._released

    def take_reports(self) -> list[RolledBack]:
        with self._lock:
            out, self.reports = self.reports, []
        return out

    def give_back(self, reports: list[RolledBack]) -> None:
        """Reports the controller did not get (it was away): sent with the next heartbeat."""
        with self._lock:
            self.reports = reports + self.reports

    def stop(self) -> None:
        with self._lock:
            for armed in self._armed.values():
                armed.cancel.set()
