"""Process deaths carried by heartbeats become events once, and a bad list is ignored."""

from __future__ import annotations

import time
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from vmknet.controller.deaths import Deaths
from vmknet.events import Event


def _wait(logged: list[Event], n: int) -> None:
    deadline = time.monotonic() + 5
    while len(logged) < n and time.monotonic() < deadline:
        time.sleep(0.01)


def _death(at: float, pid: int = 42, code: int = -9) -> dict[str, Any]:
    return {"kind": "vm", "name": "db01", "pid": pid, "exit": code, "at": at}


def test_each_death_is_logged_once_and_acknowledged() -> None:
    logged: list[Event] = []
    deaths = Deaths(logged.extend)
    assert deaths.beat("esx01", [_death(10.0)]) == {"diedAcked": 10.0}
    _wait(logged, 1)
    # The acknowledgement was lost: the agent sends it again, with a newer one.
    assert deaths.beat("esx01", [_death(10.0), _death(11.0, 43, 1)]) == {"diedAcked": 11.0}
    _wait(logged, 2)
    time.sleep(0.05)
    assert [(e.rule, e.path, e.message) for e in logged] == [
        ("ProcessDiedEvent", "hosts/esx01/processes/vm/db01",
         "vm db01 (pid 42) on esx01 died unexpectedly: killed by signal 9"),
        ("ProcessDiedEvent", "hosts/esx01/processes/vm/db01",
         "vm db01 (pid 43) on esx01 died unexpectedly: exit status 1")]
    # Per host: another host's older death is still new.
    assert deaths.beat("esx02", [_death(5.0)]) == {"diedAcked": 5.0}


def test_nothing_died_means_no_acknowledgement() -> None:
    deaths = Deaths(lambda events: None)
    assert deaths.beat("esx01", None) == {}
    assert deaths.beat("esx01", []) == {}


@given(st.lists(st.one_of(st.none(), st.integers(), st.text(max_size=5),
                          st.dictionaries(st.text(max_size=5),
                                          st.one_of(st.text(max_size=5), st.integers())),
                          ), max_size=20))
def test_what_an_agent_does_not_send_is_ignored(junk: list[Any]) -> None:
    logged: list[Event] = []
    deaths = Deaths(logged.extend)
    reply = deaths.beat("esx01", junk)  # never raises on the door's loop
    assert set(reply) <= {"diedAcked"}
    assert not logged or all(e.rule == "ProcessDiedEvent" for e in logged)
