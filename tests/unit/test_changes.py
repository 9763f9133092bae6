"""The controller's record of changes in flight (MGMT-2): answers to confirms, the verdict."""

from __future__ import annotations

import threading
import time

from vmknet.controller.changes import ABANDONED, APPLIED, Changes


def test_a_confirm_waits_for_the_change_to_be_applied() -> None:
    changes = Changes()
    changes.arm("g", ["esx01", "esx02"])
    threading.Timer(0.2, changes.set_phase, ("g", APPLIED)).start()
    started = time.monotonic()
    assert changes.confirm("g", "esx01", hold=5) == "confirmed"  # one long poll, no retries
    assert 0.15 < time.monotonic() - started < 2
    assert changes.confirm("g", "esx03", hold=0) == "abandoned"  # not armed there
    assert changes.confirm("nope", "esx01", hold=0) == "abandoned"


def test_pending_after_the_hold_and_abandoned_when_the_apply_failed() -> None:
    changes = Changes()
    changes.arm("g", ["esx01"])
    assert changes.confirm("g", "esx01", hold=0.05) == "pending"
    changes.set_phase("g", ABANDONED)
    assert changes.confirm("g", "esx01", hold=0.05) == "abandoned"


def test_the_verdict_names_who_confirmed_and_who_rolled_back() -> None:
    changes = Changes()
    changes.arm("g", ["esx01", "esx02", "esx03"])
    changes.set_phase("g", APPLIED)
    assert changes.confirm("g", "esx01") == "confirmed"
    assert changes.rolled_back("g", "esx02", {"ops": 2})
    assert not changes.knows("g", "esx02")  # a repeated report is not news
    verdict = changes.wait("g", timeout=0.1)  # esx03 never answers
    assert verdict["hosts"] == {"esx01": "confirmed", "esx02": "rolledBack", "esx03": "armed"}
    assert verdict["reports"] == {"esx02": {"ops": 2}}
    assert changes.confirm("g", "esx03", hold=0) == "abandoned"  # the change failed
