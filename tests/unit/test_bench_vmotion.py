"""The pure parts of bench/bench_vmotion.py and bench/vmotion_lab.py.

The lab generator must produce a file vmknet itself accepts without a single
lint finding, whose vMotion pairs are the ones resolve() stripes over; the
iperf3 JSON parser and the table are checked on fixed input.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

import bench_vmotion
import vmotion_lab
from bench_vmotion import IperfError, Row, format_table, parse_iperf3
from vmknet.dataplane.render import render
from vmknet.inventory import Inventory
from vmknet.model import Service
from vmknet.resolve import resolve
from vmknet.rules.lint import lint
from vmknet.state import loads
from vmotion_lab import LabSpec

SPECS = [
    LabSpec(),
    LabSpec(pairs=2, speed_mbit=1000),
    LabSpec(pairs=4, speed_mbit=1000, mtu=1500),
    LabSpec(pairs=1, standby=True),
    LabSpec(hosts=3, pairs=4, standby=True),
]


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: f"{s.hosts}h{s.pairs}p{s.mtu}"
                         f"{'s' if s.standby else ''}")
def test_lab_file_validates_and_lints_clean(spec: LabSpec) -> None:
    dc = loads(vmotion_lab.lab_yaml(spec))
    assert dc == vmotion_lab.datacenter(spec)
    assert Inventory.validate(dc) == []
    assert lint(dc) == []
    addresses = [str(a.ip) for h in dc.hosts.values() for v in h.vmknics.values()
                 if v.ipv4 and (a := v.ipv4.address)]
    assert all(a.startswith("198.18.") for a in addresses)  # LAB.md
    assert len(set(addresses)) == len(addresses)


@pytest.mark.parametrize("spec", SPECS[:4], ids=lambda s: f"{s.pairs}p")
def test_pairs_are_what_resolve_stripes_over(spec: LabSpec) -> None:
    dc = vmotion_lab.datacenter(spec)
    flows = resolve(dc, Service.VMOTION, "esx01", "esx02")
    got = [(f.source.vmknic, f.target.vmknic, f.source.address.ip, f.target.address.ip)
           for f in flows]
    want = [(p.source_vmk, p.target_vmk, p.source, p.target) for p in vmotion_lab.pairs(spec)]
    assert got == want
    assert all(f.source.netstack == "vmotion" for f in flows)


def test_each_vmotion_uplink_is_rate_limited_and_others_are_not() -> None:
    spec = LabSpec(pairs=2, speed_mbit=1000)
    state = render(vmotion_lab.datacenter(spec), "t")
    rates = sorted(q.rate_mbit for q in state.qdiscs.values())
    # two wires (one per adapter) x two hosts x both ends at 1000; management at the default
    assert rates.count(1000) == 2 * 2 * 2
    assert set(rates) == {1000, 10000}


def test_one_active_uplink_per_portgroup_and_standby_ring() -> None:
    h = vmotion_lab.datacenter(LabSpec(pairs=3, standby=True)).hosts["esx01"]
    pgs = h.vswitches["vSwitch1"].portgroups
    assert [(pgs[f"vMotion-{i}"].teaming.active, pgs[f"vMotion-{i}"].teaming.standby)
            for i in (1, 2, 3)] == [(["vmnic2"], ["vmnic3"]), (["vmnic3"], ["vmnic4"]),
                                    (["vmnic4"], ["vmnic2"])]
    single = vmotion_lab.datacenter(LabSpec(pairs=1, standby=True)).hosts["esx01"]
    assert single.vswitches["vSwitch1"].uplinks == ["vmnic2", "vmnic3"]


@pytest.mark.parametrize("kwargs", [{"hosts": 1}, {"pairs": 0}, {"pairs": 10}, {"mtu": 9001},
                                    {"speed_mbit": 5}])
def test_spec_out_of_range(kwargs: dict[str, int]) -> None:
    with pytest.raises(ValueError):
        LabSpec(**kwargs)  # type: ignore[arg-type]


# ------------------------------------------------------------------ iperf3

IPERF_JSON = {
    "start": {"connected": [{"local_host": "198.18.4.11", "remote_host": "198.18.4.21"}]},
    "intervals": [],
    "end": {
        "sum_sent": {"start": 0, "end": 2.0, "seconds": 2.0, "bytes": 249036800,
                     "bits_per_second": 996147200.0, "retransmits": 3, "sender": True},
        "sum_received": {"start": 0, "end": 2.0004, "seconds": 2.0004, "bytes": 248774656,
                         "bits_per_second": 994898560.5, "sender": True},
    },
}


def test_parse_iperf3_takes_the_receiver_side() -> None:
    r = parse_iperf3(json.dumps(IPERF_JSON))
    assert r.mbit == pytest.approx(994.8985605)
    assert r.sent_bps == 996147200.0
    assert r.retransmits == 3
    assert r.bytes == 248774656
    assert r.seconds == pytest.approx(2.0004)


@pytest.mark.parametrize("text, why", [
    ('{"start": {}, "intervals": [], "end": {}, "error": "unable to connect to server: '
     'Connection refused"}', "Connection refused"),
    ("iperf3: error - unable to start listener", "no JSON"),
    ('{"end": {"sum": {"bits_per_second": 1}}}', "sum_received"),
    ("[1, 2]", "not an object"),
])
def test_parse_iperf3_errors(text: str, why: str) -> None:
    with pytest.raises(IperfError, match=why):
        parse_iperf3(text)


# ------------------------------------------------------------------ the table


def test_ratio_and_aim() -> None:
    through = Row("single", "migration", 900.0, "Mbit/s", 1000.0, ">= 0.90")
    assert through.ratio == pytest.approx(0.9) and through.meets_aim
    slow = Row("dirty", "total time", 4.0, "s", 2.0, ">= 0.90", inverse=True)
    assert slow.ratio == pytest.approx(0.5) and slow.meets_aim is False
    down = Row("dirty", "downtime", 0.15, "s", 0.3, "<= 1.00")
    assert down.ratio == pytest.approx(0.5) and down.meets_aim
    assert Row("crypto", "AES", 8000.0, "Mbit/s").ratio is None
    assert Row("crypto", "AES", 8000.0, "Mbit/s").meets_aim is None
    assert json.loads(json.dumps(through.as_dict()))["ratio"] == pytest.approx(0.9)


def test_format_table_aligns_columns() -> None:
    rows = [
        Row("single", "migration esx01/vmk1->esx02/vmk1", 9215.4, "Mbit/s", 9945.0, ">= 0.90"),
        Row("dirty", "downtime 10 MB/s", 0.0423, "s", 0.3, "<= 1.00", "3 rounds"),
        Row("crypto", "AES-256-GCM", 12000.0, "Mbit/s"),
    ]
    text = format_table(rows)
    lines = text.splitlines()
    assert lines[0].split() == ["part", "measure", "value", "limit", "ratio", "aim", "note"]
    assert set(lines[1]) == {"-"}
    assert "9215 Mbit/s" in lines[2] and "9945 Mbit/s" in lines[2] and "0.93" in lines[2]
    assert "42.3 ms" in lines[3] and "300.0 ms" in lines[3] and lines[3].endswith("3 rounds")
    assert lines[4].split()[-2:] == ["-", "-"]
    ratio_col = lines[0].index("ratio") + len("ratio")
    assert all(line[ratio_col - 1] != " " for line in lines[2:4])  # right-aligned
    assert bench_vmotion.fmt_value(None, "s") == "-"
    assert bench_vmotion.fmt_value(12.5, "s") == "12.50 s"
