"""The pure parts of bench/bench_mgmt.py and its helpers: arguments, address plan, percentiles,
/proc parsing, the asyncio frames, and the report."""

from __future__ import annotations

import asyncio
import math
import sys
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

import bench_mgmt
import mgmt_common
from vmknet.controller.service import management_links
from vmknet.mgmt import wire

# -- arguments -----------------------------------------------------------------------------


def test_smoke_is_small_and_short() -> None:
    cfg = bench_mgmt.parse_args(["--smoke"])
    assert (cfg.hosts, cfg.agent_procs, cfg.smoke, cfg.baselines) == (50, 1, True, True)
    assert cfg.window <= 2 and cfg.rest_requests <= 50


def test_full_run_defaults_to_the_issue_scale() -> None:
    cfg = bench_mgmt.parse_args([])
    assert (cfg.hosts, cfg.agent_procs, cfg.window, cfg.inventory) == (1000, 2, 10.0, "memory")
    assert not cfg.smoke and cfg.baselines


def test_arguments_are_checked() -> None:
    cfg = bench_mgmt.parse_args(["--hosts", "200", "--agent-procs", "1", "--inventory", "store",
                                 "--no-baselines"])
    assert (cfg.hosts, cfg.agent_procs, cfg.inventory, cfg.baselines) == (200, 1, "store", False)
    for bad in (["--hosts", "0"], ["--hosts", str(mgmt_common.MAX_HOSTS + 1)],
                ["--window", "0"], ["--agent-procs", "9"], ["--inventory", "etcd"]):
        with pytest.raises(SystemExit):
            bench_mgmt.parse_args(bad)


# -- the address plan and datacenter --------------------------------------------------------


def test_addresses_are_unique_loopback_and_never_network_or_broadcast() -> None:
    n = 2000
    addrs = [IPv4Address(mgmt_common.address(i)) for i in range(n)]
    assert len(set(addrs)) == n
    assert all(a in IPv4Network("127.1.0.0/16") for a in addrs)
    assert all(int(a) & 0xFF not in (0, 255) for a in addrs)
    assert mgmt_common.address(0) == "127.1.0.1" and mgmt_common.address(250) == "127.1.1.1"
    with pytest.raises(ValueError):
        mgmt_common.address(mgmt_common.MAX_HOSTS)


def test_datacenter_gives_the_controller_each_hosts_management_address() -> None:
    dc = mgmt_common.datacenter(3)
    for host, addr in mgmt_common.plan(3):
        assert management_links(dc, host) == [(addr, "vmk0")]


@given(st.lists(st.integers(), max_size=60), st.integers(min_value=1, max_value=5))
def test_shares_cover_everything_in_order_and_evenly(items: list[int], parts: int) -> None:
    out = mgmt_common.shares(items, parts)
    assert [x for part in out for x in part] == items
    assert len(out) <= parts and all(out)
    if out:
        assert max(map(len, out)) - min(map(len, out)) <= 1


# -- percentiles ------------------------------------------------------------------------------


def test_percentile_nearest_rank() -> None:
    samples = [float(x) for x in range(1, 101)]  # 1..100
    assert mgmt_common.percentile(samples, 50) == 50
    assert mgmt_common.percentile(samples, 99) == 99
    assert mgmt_common.percentile(samples, 100) == 100
    assert mgmt_common.percentile(samples, 0) == 1
    assert mgmt_common.percentile([3.0, 1.0, 2.0], 50) == 2  # unsorted input
    assert mgmt_common.percentile([5.0], 99) == 5
    with pytest.raises(ValueError):
        mgmt_common.percentile([], 50)
    with pytest.raises(ValueError):
        mgmt_common.percentile([1.0], 101)


@given(st.lists(st.floats(allow_nan=False, allow_infinity=False), min_size=1, max_size=200),
       st.floats(min_value=0, max_value=100))
def test_percentile_is_a_sample_with_at_least_p_percent_at_or_below(
        samples: list[float], p: float) -> None:
    value = mgmt_common.percentile(samples, p)
    assert value in samples
    at_or_below = sum(1 for s in samples if s <= value)
    assert at_or_below >= math.ceil(p / 100 * len(samples))
    below = sum(1 for s in samples if s < value)
    assert below < max(1, math.ceil(p / 100 * len(samples)))  # and it is the smallest such


# -- /proc ---------------------------------------------------------------------------------


def test_parse_stat_survives_a_command_name_with_spaces_and_parens() -> None:
    fields = ["S"] + ["0"] * 50
    fields[11], fields[12], fields[17] = "250", "150", "1003"  # utime, stime, num_threads
    text = "4242 (python (bench) x) " + " ".join(fields) + "\n"
    sample = mgmt_common.parse_stat(text, 100)
    assert sample.cpu == pytest.approx(4.0) and sample.threads == 1003


def test_parse_stat_of_this_process() -> None:
    sample = mgmt_common.proc_sample(__import__("os").getpid())
    assert sample.cpu > 0 and sample.threads >= 1


def test_parse_rss() -> None:
    assert mgmt_common.parse_rss("Name:\tpython\nVmRSS:\t   71680 kB\nThreads:\t3\n") == \
        71680 * 1024
    with pytest.raises(ValueError):
        mgmt_common.parse_rss("Name:\tkthreadd\n")


# -- frames over asyncio ------------------------------------------------------------------------


def _reader(data: bytes, eof: bool = True) -> asyncio.StreamReader:
    reader = asyncio.StreamReader()
    reader.feed_data(data)
    if eof:
        reader.feed_eof()
    return reader


def test_frames_round_trip_in_wires_format() -> None:
    data = mgmt_common.frame({"id": 7, "method": "heartbeat", "params": {"pid": 1}})
    assert wire.LENGTH.unpack(data[:4])[0] == len(data) - 4

    async def go() -> None:
        reader = _reader(data + mgmt_common.frame({"id": 8}))
        assert await mgmt_common.read_frame(reader) == {"id": 7, "method": "heartbeat",
                                                        "params": {"pid": 1}}
        assert await mgmt_common.read_frame(reader) == {"id": 8}
        assert await mgmt_common.read_frame(reader) is None  # clean close

    asyncio.run(go())


def test_frames_refused_over_the_limit_cut_or_not_an_object() -> None:
    async def go() -> None:
        with pytest.raises(wire.WireError):
            await mgmt_common.read_frame(_reader(wire.LENGTH.pack(1000) + b"{}"), limit=999)
        with pytest.raises(wire.WireError):
            await mgmt_common.read_frame(_reader(b"\x00\x00"))  # closed inside the header
        with pytest.raises(wire.WireError):
            await mgmt_common.read_frame(_reader(wire.LENGTH.pack(2) + b"[]"))

    asyncio.run(go())


# -- the report --------------------------------------------------------------------------------


def _results() -> bench_mgmt.Results:
    cfg = bench_mgmt.parse_args(["--hosts", "100", "--agent-procs", "2"])
    steady = bench_mgmt.Window(10.0, {"controller": 25.0, "agents-0": 10.0, "agents-1": 12.0},
                               60.0, {"controller": 100 * 2**20}, {"controller": 104})
    fleet = {"beats": 1000, "errors": 0, "rttP50": 0.001, "rttP99": 0.004, "rttMax": 0.01,
             "lastError": ""}
    echo = bench_mgmt.Window(10.0, {"server": 5.0}, 30.0, {"server": 50 * 2**20},
                             {"server": 102})
    ms = [i / 1000 for i in range(1, 101)]  # 1..100 ms
    return bench_mgmt.Results(
        cfg, tokens=0.5, join=2.0, available=4.0, steady=steady, steady_fleet=fleet,
        rest={bench_mgmt.AS_SERVED_STATUS: ms, "session": [0.044] * 100,
              bench_mgmt.NODELAY_STATUS: [0.002] * 100, "session, TCP_NODELAY": [0.001] * 100},
        rest_rows={"Available": 100}, push_seq=[0.004] * 100, push_seq_wall=0.4,
        push_pool=[0.01] * 100, push_pool_wall=0.1, push_delivered=(100, 100),
        baselines={"echo-threads": (echo, fleet)}, store_read=0.04)


def test_report_prints_aims_and_ratios() -> None:
    text = bench_mgmt.report(_results())
    line = next(x for x in text.splitlines() if "controller CPU" in x and "aim" in x)
    assert "25.0 %" in line and "OVER" in line
    assert "50/s" in next(x for x in text.splitlines() if "agents joined" in x)
    base = next(x for x in text.splitlines() if "baseline echo-threads" in x)
    assert base.strip().endswith("controller = 5.0x")
    status = next(x for x in text.splitlines() if "GET hosts/status " in x)
    assert status.split()[3:7] == ["50.0", "ms", "p99", "99.0"] and "OVER" in status
    fast = next(x for x in text.splitlines() if "hosts/status, TCP_NODELAY" in x)
    assert "ok" in fast and "= 2.0x its listener's session" in fast
    assert "4.0x faster" in next(x for x in text.splitlines() if "pool of 16" in x)
    r = _results()
    r.push_pool_window = bench_mgmt.Window(0.1, {"controller": 90.0, "agents-0": 40.0,
                                                 "agents-1": 45.0}, 99.0)
    pool = next(x for x in bench_mgmt.report(r).splitlines() if "pool of 16" in x)
    assert pool.endswith("CPU controller 90%, agents 85%, machine 99%")
    assert "not run" in text
    assert "~400% of one core for 100 agents" in text  # 40 ms per read x 100 per s


def test_over_aims_names_what_missed() -> None:
    r = _results()
    assert bench_mgmt.over_aims(r) == ["controller CPU", "REST p99"]
    r.portgroup = 6.0
    assert "port-group push" in bench_mgmt.over_aims(r)
    r.portgroup = 1.0
    assert r.steady is not None
    r.steady.cpu["controller"] = 5.0
    r.rest[bench_mgmt.AS_SERVED_STATUS] = [0.01] * 100
    assert bench_mgmt.over_aims(r) == []
    assert "1.00 s, aim 5 s: ok" in bench_mgmt.report(r)
