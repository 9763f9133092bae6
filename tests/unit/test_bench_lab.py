"""The pure parts of bench/bench_lab.py: its datacenter, and the `ip` script it races against.

The script must build exactly what apply() builds. Here it is parsed back
(command by command, independently of the generator) into a KernelState that
plan() must find equal to render()'s; the benchmark itself checks the same on
the kernel, by reading the script's lab back.
"""

from __future__ import annotations

import shlex
import sys
from dataclasses import fields, replace
from ipaddress import ip_interface, ip_network
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

import bench_lab
import ip_script
from vmknet.dataplane.kstate import Address, KernelState, Link, Qdisc, Resolver, Route, Rule
from vmknet.dataplane.linux.routes import PROTO_GATEWAY_ONLY
from vmknet.dataplane.plan import plan
from vmknet.dataplane.render import render
from vmknet.inventory import Inventory

LAB = "benchtest"


def _opts(words: list[str]) -> dict[str, str]:
    """`key value` pairs of an ip command tail (flags without a value are skipped by caller)."""
    return {words[i]: words[i + 1] for i in range(0, len(words) - 1)}


def parse(script: str) -> KernelState:
    """The KernelState a generated script builds (only the command forms the generator uses)."""
    st = KernelState()
    for line in ip_script.commands(script):
        w = shlex.split(line)
        if w[:3] == ["ip", "netns", "add"]:
            st.namespaces.add(w[3])
        elif w[:3] == ["ip", "netns", "exec"]:
            assert w[4:7] == ["sysctl", "-q", "-w"], line
            for pair in w[7:]:
                key, value = pair.split("=", 1)
                st.sysctls[(w[3], key)] = value
        elif w[0] == "ip":
            _ip(st, w[1:])
        elif w[0] == "tc":
            ns, o = w[2], _opts(w)
            assert w[3:5] == ["qdisc", "replace"] and "root" in w and o["tbf"] == "rate", line
            st.qdiscs[(ns, o["dev"])] = Qdisc(ns, o["dev"], int(o["rate"].removesuffix("mbit")))
        elif w[0] == "mkdir":
            continue
        elif w[0] == "printf":
            ns = Path(w[-1]).parent.name
            servers = tuple(x.split()[1] for x in w[2:-2] if x.startswith("nameserver"))
            search = next((tuple(x.split()[1:]) for x in w[2:-2] if x.startswith("search")), ())
            st.resolvers[ns] = Resolver(ns, servers, search)
        else:
            raise AssertionError(f"not a plain ip/tc/sysctl command: {line}")
    return st


def _ip(st: KernelState, w: list[str]) -> None:
    v6 = w[0] == "-6"
    if v6:
        w = w[1:]
    assert w[0] == "-n", w
    ns, obj, verb, rest = w[1], w[2], w[3], w[4:]
    o = _opts(rest)
    if obj == "link" and verb == "add":
        own = _opts(rest[:rest.index("peer")]) if "peer" in rest else o
        name, kind, mtu = rest[0], own["type"], int(own["mtu"])
        if kind == "bridge":
            bridge = Link(ns, name, "bridge", mtu=mtu, mac=o.get("address"), up=False,
                          stp=o["stp_state"] == "1", bridge_priority=int(o["priority"]))
            if "ageing" in {f.name for f in fields(Link)}:  # FDB ageing, where the state has it
                ageing = int(o["ageing_time"]) // 100
                bridge = replace(bridge, ageing=None if ageing == 300 else ageing)
            st.add_link(bridge)
        else:
            assert kind == "veth", w
            tail = rest[rest.index("peer") + 1:]
            p = _opts(tail)
            a = Link(ns, name, "veth", mtu=mtu, mac=own.get("address"), up=False)
            b = Link(p.get("netns", ns), p["name"], "veth", mtu=int(p["mtu"]),
                     mac=p.get("address"), up=False)
            st.add_veth(a, b)
    elif obj == "link" and verb == "set":
        key = (ns, rest[0])
        if rest[0] == "lo":
            return
        link = st.links[key]
        if "master" in o:
            link = replace(link, master=o["master"])
        if "cost" in o:
            link = replace(link, port_cost=int(o["cost"]))
        if "up" in rest:
            link = replace(link, up=True)
        st.links[key] = link
    elif obj == "addr":
        assert verb == "add"
        st.addresses.add(Address(ns, o["dev"], rest[0]))
    elif obj == "route":
        assert verb == "add"
        dst = ("default6" if v6 else "default") if rest[0] == "default" else rest[0]
        dev = None if int(o["proto"]) == PROTO_GATEWAY_ONLY else o.get("dev")
        st.routes.add(Route(ns, dst, o.get("via"), dev, int(o.get("table", 254)), o.get("src")))
    elif obj == "rule":
        st.rules.add(Rule(ns, int(o["pref"]), o["from"], int(o["table"])))
    else:
        raise AssertionError(f"unexpected ip command: {w}")


@pytest.fixture(scope="module")
def one_host() -> KernelState:
    return render(bench_lab.datacenter(1), LAB)


def test_script_builds_exactly_render_state_for_one_host(one_host: KernelState) -> None:
    built = parse(ip_script.script_up(one_host))
    assert plan(built, one_host) == []
    assert built.namespaces == one_host.namespaces
    assert set(built.links) == set(one_host.links)
    assert built.addresses == one_host.addresses and built.rules == one_host.rules
    assert built.qdiscs == one_host.qdiscs and built.sysctls == one_host.sysctls
    assert built.resolvers == one_host.resolvers


def test_script_for_four_hosts_is_equivalent_too() -> None:
    want = render(bench_lab.datacenter(4), LAB)
    assert plan(parse(ip_script.script_up(want)), want) == []


def test_script_leaves_out_nothing(one_host: KernelState) -> None:
    """Dropping any one line makes the parsed state differ (each line builds something)."""
    lines = list(ip_script.commands(ip_script.script_up(one_host)))
    for i in range(0, len(lines), 7):
        if lines[i].endswith("link set lo up") or lines[i].startswith("mkdir"):
            continue
        cut = "\n".join(lines[:i] + lines[i + 1:])
        try:
            parsed = parse(cut)
        except (KeyError, ValueError):
            continue  # a later line refers to what the dropped one made: also a difference
        assert plan(parsed, one_host), lines[i]


def test_tear_down_deletes_every_namespace_once(one_host: KernelState) -> None:
    down = list(ip_script.commands(ip_script.script_down(one_host)))
    deleted = [shlex.split(x)[3] for x in down if x.startswith("ip netns del ")]
    assert sorted(deleted) == sorted(one_host.namespaces)
    assert all(x.startswith("ip netns del ") or x.startswith("rm -rf -- /etc/netns/vmkl-")
               for x in down)


def test_bench_lab_shape_and_addresses(one_host: KernelState) -> None:
    dc = bench_lab.datacenter(2)
    assert Inventory.validate(dc) == []
    for h in dc.hosts.values():
        assert set(h.netstacks) == {"defaultTcpipStack", "vmotion", "vSphereProvisioning",
                                    "appstack"}
        assert len(h.vmknics) == 6
    st = render(dc, LAB)
    for name in ("vmk0", "vmk1", "vmk2", "vmk3", "vmk4", "vmk5"):
        wires = [k for k, link in st.links.items()
                 if link.master == f"{name}-br" and link.port_cost is not None]
        assert len(wires) == 2 * len(dc.hosts), name  # two uplinks per adapter on every host
    bench_net, doc_net = ip_network("198.18.0.0/15"), ip_network("2001:db8::/32")
    cidrs = [a.cidr for a in st.addresses] + [r.src for r in st.rules]
    cidrs += [x for r in st.routes for x in (r.gateway, r.src) if x]
    cidrs += [r.dst for r in st.routes if not r.dst.startswith("default")]
    for c in cidrs:
        net = ip_interface(c).network
        assert net.subnet_of(bench_net if net.version == 4 else doc_net), c  # type: ignore[arg-type]


def test_report_prints_ratios() -> None:
    s = bench_lab.Sample(vmknet_up=1.0, ip_up=2.0, vmknet_down=0.1, ip_down=0.2, noop=0.3,
                         read=0.05, destroy=3.0, breakdown={"execute": 0.9}, ops=10)
    text = bench_lab.report([(16, [s], 20)], 1)
    row = next(line for line in text.splitlines() if line.strip().startswith("16"))
    assert row.split()[:6] == ["16", "10", "20", "1.000", "2.000", "0.50"]
