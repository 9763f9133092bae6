"""Cockpit's "keep connection": a change applied from the web UI stays only if the browser says so.

    book = PendingChanges(revert=lambda before: put_back(before))
    change = book.start(before, version_after, timeout=20.0)  # right after the apply
    book.confirm(change.id)      # the browser still reaches the controller: keep it
    # ... or nothing: after `timeout` seconds a timer calls revert(before)

Why on the controller and not in the page: the change may be the one that cuts
the browser off (a VLAN, an MTU), and then the page can do nothing at all. So
the controller keeps the document it had before the change and puts it back
itself when no confirmation arrives in time, as ESXi's agent does for its
controller (MGMT-2). One change waits at a time: a second one while the first
is unconfirmed would make "put back what was before" ambiguous.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, Literal, Protocol

from ..errors import ConcurrentModification, NotFound, ResourceInUse, VmknetError

State = Literal["waiting", "confirmed", "reverted", "revert-failed"]
MIN_TIMEOUT, MAX_TIMEOUT = 1.0, 300.0
KEEP_FINISHED = 16  # finished changes remembered, so a late confirm gets a clear answer


class Timer(Protocol):
    def start(self) -> None: ...
    def cancel(self) -> None: ...


TimerFactory = Callable[[float, Callable[[], None]], Timer]


def thread_timer(seconds: float, fire: Callable[[], None]) -> Timer:
    timer = threading.Timer(seconds, fire)
    timer.daemon = True  # a controller that stops does not wait for a countdown
    return timer


@dataclass(frozen=True, slots=True)
class PendingChange:
    id: str
    version: int  # the store's version the change made
    timeout: float
    deadline: float  # on the book's clock (time.monotonic by default)
    state: State = "waiting"
    error: str | None = None  # why the revert failed, when it did

    def public(self, now: float) -> dict[str, Any]:
        left = max(0.0, self.deadline - now) if self.state == "waiting" else 0.0
        return {"id": self.id, "version": self.version, "timeout": self.timeout,
                "remaining": round(left, 3), "state": self.state, "error": self.error}


class PendingChanges:
    """The change waiting for the browser's confirmation, and how recent ones ended."""

    def __init__(self, revert: Callable[[Any], None],
                 clock: Callable[[], float] = time.monotonic,
                 timer: TimerFactory = thread_timer) -> None:
        self._revert = revert
        self._clock = clock
        self._timer = timer
        self._lock = threading.Lock()
        self._changes: dict[str, PendingChange] = {}
        self._before: dict[str, Any] = {}  # id -> the document to put back (waiting only)
        self._timers: dict[str, Timer] = {}

    def now(self) -> float:
        return self._clock()

    def waiting(self) -> PendingChange | None:
        with self._lock:
            return self._waiting()

    def _waiting(self) -> PendingChange | None:
        return next((c for c in self._changes.values() if c.state == "waiting"), None)

    def refuse_if_waiting(self) -> None:
        """Before an apply: one unconfirmed change at a time."""
        busy = self.waiting()
        if busy is not None:
            raise ResourceInUse(f"Change {busy.id} is waiting for its confirmation: confirm it "
                                f"or let it roll back first", change=busy.id)

    def start(self, before: Any, version: int, timeout: float) -> PendingChange:
        """Count down from now; `before` is what `revert` gets if nobody confirms."""
        if not MIN_TIMEOUT <= timeout <= MAX_TIMEOUT:
            raise VmknetError(f"The confirmation timeout is {MIN_TIMEOUT:g} to {MAX_TIMEOUT:g} "
                              f"seconds, not {timeout:g}", code="InvalidArgument")
        with self._lock:
            busy = self._waiting()
            if busy is not None:
                raise ResourceInUse(f"Change {busy.id} is still waiting for its confirmation",
                                    change=busy.id)
            change = PendingChange(secrets.token_hex(8), version, timeout,
                                   self._clock() + timeout)
            self._changes[change.id] = change
            self._before[change.id] = before
            timer = self._timer(timeout, lambda: self.expire(change.id))
            self._timers[change.id] = timer
        timer.start()
        return change

    def get(self, change_id: str) -> PendingChange:
        with self._lock:
            return self._get(change_id)

    def _get(self, change_id: str) -> PendingChange:
        try:
            return self._changes[change_id]
        except KeyError:
            raise NotFound(f"No change {change_id} was applied from the UI",
                           change=change_id) from None

    def confirm(self, change_id: str) -> PendingChange:
        """Keep the change; refused once the countdown ran out (it is being or was reverted)."""
        with self._lock:
            change = self._get(change_id)
            if change.state == "confirmed":
                return change
            if change.state != "waiting" or self._clock() >= change.deadline:
                raise ConcurrentModification(
                    f"Change {change_id} was not confirmed in {change.timeout:g} s and is "
                    f"rolled back ({change.state})", change=change_id, state=change.state)
            done = self._finish(change, "confirmed")
            timer = self._timers.pop(change_id, None)
        if timer is not None:
            timer.cancel()
        return done

    def expire(self, change_id: str) -> None:
        """The timer ran out: put the previous document back, unless confirmed meanwhile."""
        with self._lock:
            change = self._changes.get(change_id)
            if change is None or change.state != "waiting":
                return
            before = self._before.get(change_id)
            self._timers.pop(change_id, None)
            # Still "waiting" while the revert runs: a confirm now is refused (deadline passed)
            # and no second change can start before the first is put back.
        try:
            self._revert(before)
        except Exception as err:  # any failure is reported: the timer thread must not die
            with self._lock:
                self._finish(change, "revert-failed", f"{type(err).__name__}: {err}")
            return
        with self._lock:
            self._finish(change, "reverted")

    def _finish(self, change: PendingChange, state: State,
                error: str | None = None) -> PendingChange:
        done = replace(change, state=state, error=error)
        self._changes[change.id] = done
        self._before.pop(change.id, None)
        finished = [k for k, c in self._changes.items() if c.state != "waiting"]
        for old in finished[:-KEEP_FINISHED]:
            del self._changes[old]
        return done

    def cancel_all(self) -> None:
        """The controller stops: timers go (the agents' own rollback still guards the hosts)."""
        with self._lock:
            timers = list(self._timers.values())
            self._timers.clear()
        for timer in timers:
            timer.cancel()
