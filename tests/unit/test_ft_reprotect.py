"""Re-protection's choice of host (vmknet.ft.reprotect.choose_host): the rules, not a guess.

On the FT kernel tests' lab: esx03 has no FT logging adapter (PATH-3), esx04's is
unrouted (NoPath), esx05 is the third FT host; FT-3 fills hosts up.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "kernel"))

from ftkit import FT_LAB

from vmknet.ft.reprotect import NoHost, choose_host
from vmknet.state import loads

DC = loads(FT_LAB)


def test_the_third_ft_host_not_the_failed_one_nor_the_unreachable() -> None:
    assert choose_host(DC, [], "esx02", {"esx01"}, 1) == "esx05"
    assert choose_host(DC, [], "esx05", {"esx02"}, 1) == "esx01"


def test_the_least_loaded_host_first_then_the_name() -> None:
    assert choose_host(DC, [], "esx05", set(), 1) == "esx01"
    busy = [("esx01", "esx02", 1)]  # esx01 and esx02 each carry one FT VM
    assert choose_host(DC, busy, "esx05", set(), 1) == "esx01"
    busier = [("esx01", "esx02", 1), ("esx01", "esx05", 1)]
    assert choose_host(DC, busier, "esx05", set(), 1) == "esx02"


def test_ft3_and_no_host_left_is_a_clear_refusal() -> None:
    full = [("esx05", "esx01", 1)] * 4  # esx05 runs 4 FT VMs: FT-3's limit
    with pytest.raises(NoHost) as err:
        choose_host(DC, full, "esx02", {"esx01"}, 1)
    assert choose_host(DC, full[:3], "esx02", {"esx01"}, 1) == "esx05"
    with pytest.raises(NoHost):  # 6 FT vCPUs on esx05 and this VM's 4: over 8
        choose_host(DC, [("esx05", "esx01", 3)] * 2, "esx02", {"esx01"}, 4)
    assert err.value.code == "FT-2"
    assert "esx03: PATH-3" in err.value.message and "esx04: NoPath" in err.value.message
    assert "esx05: FT-3" in err.value.message
