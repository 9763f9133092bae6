"""MGMT-3's batch sizes, and the cut of a plan into fabric and host parts that stays valid."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vmknet.controller.rollout import _keys, batch_size, parse_max_unavailable
from vmknet.dataplane.kstate import KernelState
from vmknet.dataplane.ownership import partition
from vmknet.dataplane.plan import phases, plan
from vmknet.dataplane.render import render
from vmknet.errors import InvalidArgument
from vmknet.state import load_file

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "lab.yaml"


@given(st.integers(1, 2000), st.integers(1, 100))
def test_percent_batches_are_at_least_one_and_at_most_the_share(hosts: int, pct: int) -> None:
    size = batch_size(hosts, f"{pct}%")
    assert 1 <= size <= max(1, hosts * pct // 100)


@given(st.integers(1, 2000), st.integers(1, 5000))
def test_count_batches_never_exceed_the_hosts(hosts: int, count: int) -> None:
    assert batch_size(hosts, str(count)) == min(hosts, count)


@pytest.mark.parametrize("bad", ["0", "0%", "101%", "-1", "half", "", "1.5", "50 %x"])
def test_bad_max_unavailable_is_refused(bad: str) -> None:
    with pytest.raises(InvalidArgument, match="max-unavailable"):
        parse_max_unavailable(bad)


def test_phases_are_the_plan_cut_in_two() -> None:
    desired = render(load_file(EXAMPLE), "lab")
    deletions, creations = phases(KernelState(), desired)
    assert not deletions and creations == plan(KernelState(), desired)
    back_del, back_new = phases(desired, KernelState())
    assert back_del == plan(desired, KernelState()) and not back_new


def test_a_new_lab_has_fabric_creations_that_no_host_part_replaces() -> None:
    desired = render(load_file(EXAMPLE), "lab")
    _, creations = phases(KernelState(), desired)
    owners = partition(creations, "lab", ["esx01", "esx02", "esx03"], [desired])
    assert set(owners) == {None, "esx01", "esx02", "esx03"}
    fabric = [creations[i] for i in owners[None]]
    hosts = [creations[i] for h, idx in owners.items() if h for i in idx]
    assert not _keys(fabric) & _keys(hosts)  # every kernel object has one owner
