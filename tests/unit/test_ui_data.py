"""The UI's data: the diagram of a host, the trace prediction and STP reading, the live rates."""

from __future__ import annotations

from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from vmknet.errors import DataplaneError
from vmknet.state import load_file
from vmknet.traffic.stats import Counters
from vmknet.ui.rates import Meter, Reading, services_of
from vmknet.ui.topology import host_diagram
from vmknet.ui.trace import trace

LAB = Path(__file__).resolve().parents[2] / "examples" / "lab.yaml"


def test_diagram_holds_every_adapter_once_and_unused_uplinks() -> None:
    dc = load_file(LAB)
    host = dc.hosts["esx01"]
    host.vswitches["vSwitch1"].portgroups["vMotion-A"].teaming.standby = []  # type: ignore[union-attr]
    host.vmknics["vmk9"] = host.vmknics["vmk1"].model_copy(update={"portgroup": "gone"})
    d = host_diagram(dc, "esx01")
    shown = [v["name"] for s in d["switches"] for pg in s["portgroups"] for v in pg["vmknics"]]
    assert sorted(shown) == sorted(n for n in host.vmknics if n != "vmk9")
    assert [v["name"] for v in d["unattached"]] == ["vmk9"]
    pg = next(p for s in d["switches"] for p in s["portgroups"] if p["name"] == "vMotion-A")
    assert pg["teaming"]["unused"] == ["vmnic3"] and not pg["inherited"]
    assert d["nics"]["vmnic0"] == {"link": "up", "speed": 10000, "mtu": 1500}


def test_trace_prediction_skips_a_nic_whose_link_is_down() -> None:
    dc = load_file(LAB)
    dc.hosts["esx01"].nics["vmnic2"].link = "down"
    t = trace(dc, "esx01", "vmk1")
    assert [(h["nic"], h["link"]) for h in t["hops"]] == [("vmnic2", "down"), ("vmnic3", "up")]
    assert t["carrying"] == ["vmnic3"] and not t["measured"]


def test_trace_in_a_lab_believes_the_kernels_stp_states() -> None:
    dc = load_file(LAB)
    asked: list[str] = []

    def states(ns: str) -> dict[str, str]:
        asked.append(ns)
        return {"vmk4-n4": "blocking", "vmk4-n5": "forwarding"}

    t = trace(dc, "esx02", "vmk4", "h16", states=states)
    assert asked == ["vmkl-h16.esx02"]
    assert t["measured"] and t["carrying"] == ["vmnic5"]
    assert [(h["uplink"], h["role"], h["stp"]) for h in t["hops"]] == [
        ("Uplink 1", "active", "blocking"), ("Uplink 2", "standby", "forwarding")]


def test_trace_falls_back_to_the_prediction_when_the_kernel_cannot_be_read() -> None:
    def states(ns: str) -> dict[str, str]:
        raise DataplaneError(f"no {ns}")

    t = trace(load_file(LAB), "esx01", "vmk0", "h16", states=states)
    assert not t["measured"] and t["carrying"] == ["vmnic0"]


def test_rates_per_adapter_and_per_service() -> None:
    dc = load_file(LAB)
    readings: list[Reading] = [
        {("esx01", "vmk1"): Counters(1000, 2000), ("esx01", "vmk2"): Counters(0, 0)},
        {("esx01", "vmk1"): Counters(3000, 2500), ("esx01", "vmk2"): Counters(500, 100)},
    ]
    meter = Meter(lambda: readings.pop(0), services_of(dc))
    first = meter.sample(10.0)
    assert first["first"] and first["adapters"]["esx01"]["vmk1"] == {"rx": 0.0, "tx": 0.0}
    second = meter.sample(12.0)
    assert second["adapters"]["esx01"]["vmk1"] == {"rx": 1000.0, "tx": 250.0}
    assert second["services"]["vmotion"] == {"rx": 1250.0, "tx": 300.0}


@given(st.lists(st.tuples(st.integers(0, 2**40), st.integers(0, 2**40)), min_size=2, max_size=8),
       st.lists(st.floats(0.05, 5.0), min_size=8, max_size=8))
def test_rates_are_never_negative_even_when_counters_restart(
        values: list[tuple[int, int]], gaps: list[float]) -> None:
    seq = [{("h", "vmk0"): Counters(rx, tx)} for rx, tx in values]
    meter = Meter(lambda: seq.pop(0), {("h", "vmk0"): ["management"]})
    now = 0.0
    for i in range(len(values)):
        now += gaps[i]
        out = meter.sample(now)
        rate = out["adapters"]["h"]["vmk0"]
        assert rate["rx"] >= 0 and rate["tx"] >= 0
        assert out["services"]["management"] == rate
