"""FT-2 on the controller (vmknet.controller.arbiter): one winner per generation, never two.

A race of both roles, a session of an older pair that never wins, the decision kept
across a controller restart (its file), the events, and a hypothesis property over
any interleaving of begins and claims.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vmknet.controller import arbiter
from vmknet.errors import InvalidArgument
from vmknet.events import Event
from vmknet.supervise.records import read_json, write_json

P, S = arbiter.PRIMARY, arbiter.SECONDARY


def test_race_of_both_roles_has_one_winner() -> None:
    arb = arbiter.Arbiter()
    for n in range(30):
        session = f"web01-{n}"
        arb.begin("web01", session, "esx01", "esx02")
        results: dict[str, bool] = {}
        start = threading.Barrier(2)

        def ask(role: str, session: str = session, results: dict[str, bool] = results,
                start: threading.Barrier = start) -> None:
            start.wait()
            results[role] = bool(arb.claim("web01", session, role)["won"])

        threads = [threading.Thread(target=ask, args=(r,)) for r in (P, S)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sorted(results.values()) == [False, True], results
        won = next(r for r, v in results.items() if v)
        assert arb.winner(session) == won and arb.claim("web01", session, won)["won"]


def test_an_older_session_never_wins_after_a_new_generation() -> None:
    arb = arbiter.Arbiter()
    assert arb.begin("app01", "old", "esx01", "esx02") == {"generation": 1}
    assert arb.claim("app01", "old", S)["won"]  # failover
    assert arb.begin("app01", "new", "esx02", "esx05", reprotect=True) == {"generation": 2}
    stale = arb.claim("app01", "old", P)  # the old primary, frozen, wakes up
    assert stale == {"won": False, "winner": S, "generation": 2, "stale": True}
    assert arb.claim("app01", "new", P)["won"] and not arb.claim("app01", "new", S)["won"]
    arb.end("app01", "new")
    assert arb.winner("new") == P and "app01" not in arb.pairs


def test_a_claim_before_begin_keeps_its_decision() -> None:
    arb = arbiter.Arbiter()
    assert arb.claim("web02", "s", S)["won"]  # an older controller never heard the begin
    assert arb.begin("web02", "s", "esx01", "esx02") == {"generation": 1}
    assert not arb.claim("web02", "s", P)["won"]


def test_decisions_survive_a_restart_and_are_events(tmp_path: Path) -> None:
    path = tmp_path / arbiter.FILE
    events: list[Event] = []
    first = arbiter.Arbiter(lambda d: write_json(path, d), events.extend)
    first.begin("db01", "s1", "esx01", "esx02")
    assert first.claim("db01", "s1", P)["won"]
    again = arbiter.Arbiter(lambda d: write_json(path, d), events.extend, read_json(path))
    assert again.claim("db01", "s1", S) == {"won": False, "winner": P, "generation": 1}
    assert [e.message.split(":")[0] for e in events] == ["FtSecondaryStarted",
                                                        "FtPrimaryRunsOn"]
    assert {e.rule for e in events} == {"FT-1", "FT-2"} and events[0].path == "vms/db01"
    again.begin("db01", "s2", "esx02", "esx05", reprotect=True)
    assert events[-1].message.startswith("FtReprotected") and "generation 2" in events[-1].message


def test_the_door_entry_checks_what_it_is_sent() -> None:
    arb = arbiter.Arbiter()
    for bad in ({"op": "claim", "vm": "a", "session": "s", "role": "both"},
                {"op": "drop"}, {"op": "claim", "vm": 7, "session": "s", "role": P},
                {"op": "begin", "vm": "a" * 200, "session": "s"}):
        with pytest.raises(InvalidArgument):
            arb.handle(bad)
    arb.handle({"op": "begin", "vm": "a", "session": "s", "primary": "h1", "secondary": "h2"})
    assert arb.handle({"op": "claim", "vm": "a", "session": "s", "role": S})["won"]
    assert arb.handle({"op": "winner", "session": "s"}) == {"winner": S}


Op = tuple[str, int, str]  # begin|claim, session number, role


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["begin", "claim"]), st.integers(0, 3),
                          st.sampled_from([P, S])), max_size=30))
def test_property_one_winner_per_session_and_only_the_current_one(ops: list[Op]) -> None:
    arb = arbiter.Arbiter()
    current: str | None = None
    begun: set[str] = set()
    winners: dict[str, set[str]] = {}
    for op, n, role in ops:
        session = f"s{n}"
        if op == "begin":
            if session in begun:
                continue  # a session is begun once (each ft on makes a fresh one)
            arb.begin("vm", session, "h1", "h2")
            begun.add(session)
            current = session
            continue
        got: dict[str, Any] = arb.claim("vm", session, role)
        if current is None:  # nothing begun: the first claim's session becomes the pair
            current = session
        if session != current:
            assert not got["won"]
        if got["won"]:
            winners.setdefault(session, set()).add(role)
    assert all(len(roles) == 1 for roles in winners.values()), winners
