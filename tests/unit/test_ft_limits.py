"""FT-3 (vmknet.ft.limits) and the FT arbiter's test-and-set (FT-2): pure logic and one file."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vmknet.errors import RuleViolation
from vmknet.ft import arbiter, limits

HOSTS = ["esx01", "esx02", "esx03"]


def test_fifth_ft_vm_on_a_host_is_refused() -> None:
    protected = [("esx01", "esx02", 1), ("esx03", "esx01", 1), ("esx01", "esx03", 1),
                 ("esx02", "esx01", 1)]
    with pytest.raises(RuleViolation) as err:
        limits.check(protected, "esx01", "esx03", 1)
    assert err.value.code == "FT-3" and "esx01" in err.value.message
    limits.check(protected, "esx02", "esx03", 1)  # esx02 has 2, esx03 has 2


def test_vcpus_count_on_both_hosts() -> None:
    limits.check([("esx01", "esx02", 4)], "esx02", "esx03", 4)
    with pytest.raises(RuleViolation, match="esx02 would run 9"):
        limits.check([("esx01", "esx02", 4)], "esx03", "esx02", 5)
    with pytest.raises(RuleViolation):
        limits.check([], "esx01", "esx02", 0)


@given(st.lists(st.tuples(st.sampled_from(HOSTS), st.sampled_from(HOSTS),
                          st.integers(1, 8)), max_size=8),
       st.sampled_from(HOSTS), st.sampled_from(HOSTS), st.integers(1, 8))
def test_accepted_means_every_host_within_limits(protected: list[tuple[str, str, int]],
                                                 primary: str, secondary: str,
                                                 vcpus: int) -> None:
    after = [*protected, (primary, secondary, vcpus)]
    vms = {h: sum((p == h) + (s == h) for p, s, _ in after) for h in HOSTS}
    cpus = {h: sum(n * ((p == h) + (s == h)) for p, s, n in after) for h in HOSTS}
    ok = primary != secondary and all(vms[h] <= limits.MAX_VMS and cpus[h] <= limits.MAX_VCPUS
             for h in (primary, secondary))
    try:
        limits.check(protected, primary, secondary, vcpus)
    except RuleViolation:
        assert not ok
    else:
        assert ok


def test_arbiter_exactly_one_winner_under_a_race(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(arbiter, "ft_dir", lambda lab: tmp_path / lab / "ft")
    monkeypatch.setattr(arbiter, "on_controller", lambda lab: False)  # the file form
    for round_no in range(20):
        session = f"s{round_no}"
        results: dict[str, bool] = {}
        start = threading.Barrier(2)

        def ask(role: str, session: str = session,
                results: dict[str, bool] = results, start: threading.Barrier = start) -> None:
            start.wait()
            results[role] = arbiter.claim("lab", "vm", session, role)

        threads = [threading.Thread(target=ask, args=(r,))
                   for r in (arbiter.PRIMARY, arbiter.SECONDARY)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sorted(results.values()) == [False, True], results
        won = next(r for r, v in results.items() if v)
        assert arbiter.winner("lab", session) == won
        assert arbiter.claim("lab", "vm", session, won)  # asking again: the same answer
    arbiter.forget("lab", "vm", "s0")
    assert arbiter.winner("lab", "s0") is None
