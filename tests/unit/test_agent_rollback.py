"""The agent's side of MGMT-2 (RollbackGuard) on the in-memory backend: run, confirm or revert
by itself, refuse foreign ops, and pick an armed change up again after a restart."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from vmknet.agent.rollback import RollbackGuard, RolledBack
from vmknet.dataplane import kcodec
from vmknet.dataplane.kops import CreateNamespace
from vmknet.dataplane.memory import MemoryBackend
from vmknet.errors import InvalidArgument

LAB, HOST = "t", "esx01"
OWN = f"vmkl-{LAB}.{HOST}.vmotion"


class Controller:
    """What the guard talks to: answers confirms, or is unreachable; collects reports."""

    def __init__(self, answer: str | None) -> None:
        self.answer = answer  # None: unreachable
        self.reports: list[RolledBack] = []

    def confirm(self, generation: str, within: float) -> str:
        if self.answer is None:
            raise OSError("no route to the controller")
        return self.answer

    def report(self, done: RolledBack) -> None:
        self.reports.append(done)


def _guard(ctl: Controller, backend: MemoryBackend, folder: Path | None = None) -> RollbackGuard:
    return RollbackGuard(LAB, HOST, ctl.confirm, ctl.report, lambda: backend, folder)


def _wait(check: Callable[[], object], limit: float = 5.0) -> bool:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.02)
    return False


def _ops(*names: str) -> list[object]:
    return [kcodec.encode(CreateNamespace(n)) for n in names]


def test_confirmed_change_stays_and_can_be_reverted_later() -> None:
    backend, ctl = MemoryBackend(), Controller("confirmed")
    guard = _guard(ctl, backend)
    guard.realise({"generation": "g1", "ops": _ops(OWN), "timeout": 5})
    assert OWN in backend.read("vmkl-").namespaces
    assert _wait(lambda: "g1" in guard._kept)
    assert guard.revert({"generation": "g1"})["ops"] == 1  # a later host of the rollout failed
    assert OWN not in backend.read("vmkl-").namespaces


def test_a_host_cut_off_reverts_by_itself_and_reports() -> None:
    backend, ctl = MemoryBackend(), Controller(None)
    guard = _guard(ctl, backend)
    guard.realise({"generation": "g2", "ops": _ops(OWN), "timeout": 0.3})
    assert OWN in backend.read("vmkl-").namespaces
    ctl.answer = "pending"  # reachable again only to take the report... still never confirms
    assert _wait(lambda: ctl.reports)
    assert OWN not in backend.read("vmkl-").namespaces
    assert ctl.reports[0].generation == "g2" and ctl.reports[0].ops == 1


def test_ops_outside_the_host_are_refused_and_nothing_runs() -> None:
    backend, ctl = MemoryBackend(), Controller("confirmed")
    guard = _guard(ctl, backend)
    for foreign in ("vmkl-t.esx02.vmotion", "vmkl-t._rtr.rtr01", "vmkl-other.esx01", "/etc"):
        with pytest.raises(InvalidArgument):
            guard.realise({"generation": "g3", "ops": _ops(OWN, foreign), "timeout": 5})
    assert not backend.read("vmkl-").namespaces
    for bad in ({"generation": "", "ops": [], "timeout": 5},
                {"generation": "g", "ops": [], "timeout": 10_000},
                {"generation": "g", "ops": "x", "timeout": 5}):
        with pytest.raises(InvalidArgument):
            guard.realise(bad)


@pytest.mark.parametrize(("answer", "kept"), [("abandoned", True), (None, False)])
def test_an_armed_change_survives_a_restart(tmp_path: Path, answer: str | None,
                                            kept: bool) -> None:
    backend = MemoryBackend()
    first = _guard(Controller("pending"), backend, tmp_path)
    first.realise({"generation": "g4", "ops": _ops(OWN), "timeout": 60})
    first.stop()  # the agent dies while it waits for "confirmed"
    assert (tmp_path / "g4.json").exists()
    ctl = Controller(answer)
    second = _guard(ctl, backend, tmp_path)
    assert second.resume() == ["g4"]
    if kept:  # the controller settled it meanwhile (its apply was undone): nothing to do
        assert _wait(lambda: not (tmp_path / "g4.json").exists())
        assert OWN in backend.read("vmkl-").namespaces and not ctl.reports
    else:  # still cut off: the undo runs when the (remaining) deadline passes
        second._armed["g4"].deadline = time.monotonic()  # do not wait the full minute
        ctl.answer = "pending"
        assert _wait(lambda: ctl.reports)
        assert OWN not in backend.read("vmkl-").namespaces
        assert not (tmp_path / "g4.json").exists()
    second.stop()


def test_the_controllers_word_settles_a_change_without_a_connection_of_its_own() -> None:
    backend, ctl = MemoryBackend(), Controller(None)  # the agent could not ask by itself
    guard = _guard(ctl, backend)
    guard.realise({"generation": "g5", "ops": _ops(OWN), "timeout": 5})
    assert guard.confirmed({"generation": "g5"}) == {"confirmed": True}
    assert "g5" in guard._kept and "g5" not in guard._armed
    time.sleep(0.2)
    assert OWN in backend.read("vmkl-").namespaces and not ctl.reports
    assert guard.confirmed({"generation": "unknown"}) == {"confirmed": False}


@pytest.mark.parametrize(("outcome", "stays"), [("released", True), ("reverted", False),
                                                (None, False)])
def test_a_confirmed_part_waits_for_its_rollouts_outcome(outcome: str | None,
                                                         stays: bool) -> None:
    """Released: the change stays; reverted (a later batch failed, or the controller never
    committed it) or a controller away past the timeout: the agent takes its part back."""
    backend, ctl = MemoryBackend(), Controller("confirmed")

    def answer(generation: str) -> str:
        if outcome is None:
            raise OSError("the controller is away")
        return outcome

    guard = RollbackGuard(LAB, HOST, ctl.confirm, ctl.report, lambda: backend, None, answer)
    guard.realise({"generation": "g6", "ops": _ops(OWN), "timeout": 2})
    assert _wait(lambda: "g6" not in guard._armed)  # confirmed, kept
    assert _wait(lambda: "g6" not in guard._kept, 10)  # settled one way or the other
    assert (OWN in backend.read("vmkl-").namespaces) is stays


def test_a_confirmed_part_survives_a_restart_and_still_hears_its_outcome(
        tmp_path: Path) -> None:
    backend = MemoryBackend()
    first = RollbackGuard(LAB, HOST, Controller("confirmed").confirm, Controller(None).report,
                          lambda: backend, tmp_path, lambda g: "pending")
    first.realise({"generation": "g7", "ops": _ops(OWN), "timeout": 5})
    assert _wait(lambda: "g7" in first._kept)
    first.stop()  # the agent dies while the rollout is still going on
    assert json.loads((tmp_path / "g7.json").read_text())["state"] == "kept"
    second = RollbackGuard(LAB, HOST, Controller("confirmed").confirm, Controller(None).report,
                           lambda: backend, tmp_path, lambda g: "reverted")
    assert second.resume() == ["g7"]
    assert _wait(lambda: OWN not in backend.read("vmkl-").namespaces, 5)  # a later host failed
    assert not (tmp_path / "g7.json").exists()
