"""api.pending: Cockpit's "keep connection" on the controller, with a hand-driven clock, timer."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable
from typing import ClassVar

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vmknet.api.pending import KEEP_FINISHED, PendingChanges, thread_timer
from vmknet.errors import ConcurrentModification, NotFound, ResourceInUse, VmknetError


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class ManualTimer:
    """Fires only when the test says so: the countdown without sleeping."""

    made: ClassVar[list[ManualTimer]] = []

    def __init__(self, seconds: float, fire: Callable[[], None]) -> None:
        self.seconds, self.fire, self.started, self.cancelled = seconds, fire, False, False
        ManualTimer.made.append(self)

    def start(self) -> None:
        self.started = True

    def cancel(self) -> None:
        self.cancelled = True


def book(reverted: list[object], clock: Clock | None = None) -> PendingChanges:
    ManualTimer.made = []
    return PendingChanges(reverted.append, clock=clock or Clock(), timer=ManualTimer)


def test_unconfirmed_change_is_reverted_to_the_previous_document_when_the_timer_fires() -> None:
    reverted: list[object] = []
    clock = Clock()
    b = book(reverted, clock)
    change = b.start("before", version=7, timeout=20)
    assert change.state == "waiting" and change.public(clock.now)["remaining"] == 20
    timer = ManualTimer.made[-1]
    assert timer.started and timer.seconds == 20
    clock.now += 20
    timer.fire()
    assert reverted == ["before"]
    assert b.get(change.id).state == "reverted"
    with pytest.raises(ConcurrentModification, match="not confirmed in 20 s"):
        b.confirm(change.id)


def test_confirmed_change_is_kept_and_its_timer_cancelled() -> None:
    reverted: list[object] = []
    clock = Clock()
    b = book(reverted, clock)
    change = b.start("before", version=3, timeout=10)
    clock.now += 9.5
    assert b.confirm(change.id).state == "confirmed"
    assert ManualTimer.made[-1].cancelled
    ManualTimer.made[-1].fire()  # a timer that fires anyway changes nothing
    assert reverted == [] and b.get(change.id).state == "confirmed"
    assert b.confirm(change.id).state == "confirmed"  # confirming twice is harmless


def test_a_confirmation_after_the_deadline_is_refused_even_before_the_timer_thread_ran() -> None:
    reverted: list[object] = []
    clock = Clock()
    b = book(reverted, clock)
    change = b.start("before", version=1, timeout=5)
    clock.now += 5
    with pytest.raises(ConcurrentModification):
        b.confirm(change.id)
    ManualTimer.made[-1].fire()
    assert reverted == ["before"]


def test_one_change_waits_at_a_time() -> None:
    b = book([])
    first = b.start("a", version=1, timeout=5)
    with pytest.raises(ResourceInUse) as err:
        b.start("b", version=2, timeout=5)
    assert err.value.details["change"] == first.id
    with pytest.raises(ResourceInUse):
        b.refuse_if_waiting()
    b.confirm(first.id)
    b.refuse_if_waiting()
    assert b.start("b", version=2, timeout=5).state == "waiting"


def test_a_failed_revert_is_reported_not_raised_in_the_timer_thread() -> None:
    def broken(_: object) -> None:
        raise VmknetError("the lab is gone", code="DataplaneError")

    ManualTimer.made = []
    b = PendingChanges(broken, clock=Clock(), timer=ManualTimer)
    change = b.start("before", version=1, timeout=5)
    ManualTimer.made[-1].fire()
    done = b.get(change.id)
    assert done.state == "revert-failed" and done.error is not None and "lab is gone" in done.error


def test_unknown_change_and_timeout_bounds() -> None:
    b = book([])
    with pytest.raises(NotFound):
        b.get("nope")
    with pytest.raises(NotFound):
        b.confirm("nope")
    for bad in (0.5, 301.0):
        with pytest.raises(VmknetError) as err:
            b.start("x", version=1, timeout=bad)
        assert err.value.code == "InvalidArgument"


def test_finished_changes_are_remembered_up_to_a_bound() -> None:
    b = book([])
    ids = []
    for i in range(KEEP_FINISHED + 5):
        c = b.start(i, version=i, timeout=5)
        b.confirm(c.id)
        ids.append(c.id)
    for old in ids[:5]:
        with pytest.raises(NotFound):
            b.get(old)
    assert all(b.get(i).state == "confirmed" for i in ids[5:])


@given(st.lists(st.sampled_from(["confirm", "fire", "tick"]), max_size=12))
def test_a_change_ends_exactly_once_whatever_the_order(steps: list[str]) -> None:
    reverted: list[object] = []
    clock = Clock()
    b = book(reverted, clock)
    change = b.start("before", version=1, timeout=5)
    timer = ManualTimer.made[-1]
    for step in steps:
        if step == "confirm":
            with contextlib.suppress(ConcurrentModification):
                b.confirm(change.id)
        elif step == "fire":
            clock.now = max(clock.now, change.deadline)
            timer.fire()
        else:
            clock.now += 1
    state = b.get(change.id).state
    assert state in ("waiting", "confirmed", "reverted")
    assert len(reverted) == (1 if state == "reverted" else 0)
    if state == "confirmed":
        assert timer.cancelled


def test_the_real_timer_reverts_by_itself() -> None:
    done = threading.Event()
    b = PendingChanges(lambda _: done.set(), timer=thread_timer)
    change = b.start("before", version=1, timeout=1.0)
    assert done.wait(5)
    deadline = time.monotonic() + 2
    while b.get(change.id).state == "waiting" and time.monotonic() < deadline:
        time.sleep(0.01)
    assert b.get(change.id).state == "reverted"
