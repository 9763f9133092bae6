"""FT-3's lint (rules/lint_ft.py): an FT logging adapter on uplinks slower than 10 Gbit/s.

On the FT kernel tests' lab (each FT adapter vmk2 alone on vSwitch1, uplink vmnic1):
examples, a standby uplink, and a hypothesis property over the uplinks' speeds.
"""

from __future__ import annotations

import sys
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "kernel"))

from ftkit import FT_LAB

from vmknet.model import Datacenter, TeamingPolicy
from vmknet.rules.lint import lint
from vmknet.state import loads

FT_HOSTS = ("esx01", "esx02", "esx04", "esx05")  # esx03 has no FT logging adapter


def ft3(dc: Datacenter) -> dict[str, str]:
    return {f.path: f.message for f in lint(dc) if f.rule == "FT-3"}


def test_10_gbits_everywhere_no_finding_1_gbit_a_warning() -> None:
    dc = loads(FT_LAB)
    assert ft3(dc) == {}
    dc.hosts["esx02"].nics["vmnic1"].speed = 1000
    got = [f for f in lint(dc) if f.rule == "FT-3"]
    assert [(f.path, f.severity) for f in got] == [("hosts/esx02/vmknics/vmk2", "warning")]
    assert "esx02/vmk2" in got[0].message and "vmnic1 at 1000 Mbit/s" in got[0].message
    assert "vSwitch1" in got[0].hint and "FT-Logging" in got[0].hint


def test_a_slow_standby_counts_an_unused_uplink_does_not() -> None:
    dc = loads(FT_LAB)
    vs = dc.hosts["esx01"].vswitches["vSwitch1"]
    dc.hosts["esx01"].nics["vmnic0"].speed = 1000
    vs.uplinks.append("vmnic0")
    vs.teaming = TeamingPolicy(active=["vmnic1"], standby=[])  # vmnic0 unused: no finding
    assert ft3(dc) == {}
    vs.teaming = TeamingPolicy(active=["vmnic1"], standby=["vmnic0"])  # it takes over
    assert list(ft3(dc)) == ["hosts/esx01/vmknics/vmk2"]
    assert "vmnic0 at 1000 Mbit/s" in ft3(dc)["hosts/esx01/vmknics/vmk2"]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.sampled_from([100, 1000, 2500, 5000, 9999, 10000, 25000, 100000]),
                min_size=5, max_size=5))
def test_property_a_warning_exactly_where_an_ft_uplink_is_slow(speeds: list[int]) -> None:
    dc = loads(FT_LAB)
    for host, speed in zip(sorted(dc.hosts), speeds, strict=True):
        dc.hosts[host].nics["vmnic1"].speed = speed
    want = {f"hosts/{h}/vmknics/vmk2" for h, s in zip(sorted(dc.hosts), speeds, strict=True)
            if h in FT_HOSTS and s < 10000}
    assert set(ft3(dc)) == want
