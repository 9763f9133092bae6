"""SEC-6 in the data plane: the router filter render makes, plans, applies and reads back."""

from __future__ import annotations

import json
from ipaddress import ip_interface
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vmknet.dataplane.apply import FaultInjector, apply
from vmknet.dataplane.kops import SetFilter
from vmknet.dataplane.kstate import Filter
from vmknet.dataplane.linux import nft
from vmknet.dataplane.memory import MemoryBackend
from vmknet.dataplane.plan import describe, plan
from vmknet.dataplane.render import render, router_filter
from vmknet.errors import DataplaneError
from vmknet.model import Router, RouterInterface
from vmknet.state import load_file

LAB = Path(__file__).resolve().parents[2] / "examples" / "lab.yaml"
RTR = "vmkl-lab._rtr.rtr01"


def test_lab_example_router_forwards_only_vmotion_between_its_networks() -> None:
    f = render(load_file(LAB)).filters[RTR]
    assert {p for p in f.forward if p[0] != p[1]} == {("r2", "r3"), ("r3", "r2")}
    assert ("r2", "198.18.0.1") in f.refuse and ("r0", "198.18.4.1") in f.refuse
    assert ("r1", "2001:db8:0:10::1") in f.refuse
    assert not any(i == "r2" and a == "198.18.5.1" for i, a in f.refuse)  # vMotion's own


def test_router_without_traffic_types_has_no_filter() -> None:
    dc = load_file(LAB)
    for iface in dc.physical.routers["rtr01"].interfaces:
        iface.traffic = None
    assert render(dc).filters == {}


def test_declared_route_forwards_the_pair_and_answers_its_gateways() -> None:
    dc = load_file(LAB)
    dc.physical.routers["rtr01"].routes = [("management", "vSphereProvisioning")]
    f = render(dc).filters[RTR]
    assert {("r0", "r1"), ("r1", "r0")} <= f.forward
    assert ("r1", "198.18.0.1") not in f.refuse and ("r1", "198.18.4.1") in f.refuse


def test_apply_reads_back_then_repairs_a_drifted_filter() -> None:
    desired = render(load_file(LAB))
    backend = MemoryBackend()
    ops = apply(backend, desired, "vmkl-lab.").ops
    assert [describe(o) for o in ops if isinstance(o, SetFilter)] == [
        f"SetFilter {RTR} nftables new: 6 forward, 13 refuse"]
    assert plan(backend.read("vmkl-lab."), desired) == []
    good = backend.state.filters[RTR]
    backend.state.filters[RTR] = Filter(RTR, good.forward | {("r2", "r0")}, good.refuse,
                                        ("chain input missing",))
    [op] = plan(backend.read("vmkl-lab."), desired)
    assert describe(op) == (f"SetFilter {RTR} nftables -forward r2>r0 "
                            "-drift 'chain input missing'")
    apply(backend, desired, "vmkl-lab.")
    assert backend.state.filters[RTR] == good


def test_a_failed_apply_takes_the_filter_back_out() -> None:
    desired = render(load_file(LAB))
    steps = len(plan(MemoryBackend().read("vmkl-lab."), desired))
    backend = MemoryBackend()
    with pytest.raises(DataplaneError):
        apply(FaultInjector(backend, steps - 1), desired, "vmkl-lab.")  # the last step fails
    assert backend.read("vmkl-lab.").filters == {} and backend.state.namespaces == set()


def test_lab_down_removes_the_filter_before_the_namespace() -> None:
    backend = MemoryBackend()
    apply(backend, render(load_file(LAB)), "vmkl-lab.")
    ops = plan(backend.read("vmkl-lab."), render(load_file(LAB)).__class__())
    names = [type(o).__name__ for o in ops]
    assert names.index("SetFilter") < names.index("DeleteNamespace")


# ------------------------------------------------------------- nft text and JSON

def _listing(f: Filter, *, policy: str = "drop") -> dict[str, Any]:
    """What `nft -j list ruleset` prints for `nft.script(f)` (shape checked on nft 1.0.6)."""
    items: list[dict[str, Any]] = [{"metainfo": {"version": "1.0.6"}},
                                   {"table": {"family": "inet", "name": "vmknet", "handle": 1}}]
    for name, hook, pol in (("forward", "forward", policy), ("input", "input", "accept")):
        items.append({"chain": {"family": "inet", "table": "vmknet", "name": name, "handle": 1,
                                "type": "filter", "hook": hook, "prio": 0, "policy": pol}})

    def meta(key: str, value: str) -> dict[str, Any]:
        return {"match": {"op": "==", "left": {"meta": {"key": key}}, "right": value}}

    for i, o in sorted(f.forward):
        items.append({"rule": {"family": "inet", "table": "vmknet", "chain": "forward",
                               "expr": [meta("iifname", i), meta("oifname", o),
                                        {"accept": None}]}})
    for i, a in sorted(f.refuse):
        proto = "ip" if ip_interface(a).version == 4 else "ip6"
        daddr = {"match": {"op": "==", "right": a,
                           "left": {"payload": {"protocol": proto, "field": "daddr"}}}}
        items.append({"rule": {"family": "inet", "table": "vmknet", "chain": "input",
                               "expr": [meta("iifname", i), daddr, {"drop": None}]}})
    return {"nftables": items}


def test_nft_listing_parses_back_to_the_filter() -> None:
    f = render(load_file(LAB)).filters[RTR]
    assert nft.parse(RTR, json.loads(json.dumps(_listing(f)))) == f
    assert nft.parse(RTR, {"nftables": [{"metainfo": {}}]}) is None


def test_nft_listing_with_changed_policy_or_foreign_rule_is_drift() -> None:
    f = render(load_file(LAB)).filters[RTR]
    drifted = nft.parse(RTR, _listing(f, policy="accept"))
    assert drifted is not None and drifted.drift[0].startswith("chain ")
    assert "chain forward missing" in drifted.drift
    listing = _listing(f)
    listing["nftables"].append({"table": {"family": "ip", "name": "nat", "handle": 2}})
    listing["nftables"].append({"rule": {"family": "inet", "table": "vmknet", "chain": "forward",
                                         "expr": [{"accept": None}]}})
    other = nft.parse(RTR, listing)
    assert other is not None and other.forward == f.forward and len(other.drift) == 2


def test_nft_script_is_one_transaction_with_both_chains() -> None:
    text = nft.script(Filter(RTR, frozenset({("r0", "r1")}), frozenset({("r1", "2001:db8::1")})))
    assert text.splitlines()[0] == "flush ruleset"
    assert 'iifname "r0" oifname "r1" accept' in text
    assert 'iifname "r1" ip6 daddr 2001:db8::1 drop' in text
    assert "policy drop;" in text and "policy accept;" in text


# ------------------------------------------------------------------- properties

traffic = st.sampled_from([None, "management", "vmotion", "vSphereProvisioning", "vsan"])


@st.composite
def routers(draw: st.DrawFn) -> Router:
    types = draw(st.lists(traffic, min_size=1, max_size=6))
    named = sorted({t for t in types if t is not None})
    pairs = st.tuples(st.sampled_from(named), st.sampled_from(named)) if named else st.nothing()
    return Router(interfaces=[RouterInterface(vlan=10 + i, traffic=t,
                                              addresses=[ip_interface(f"198.18.{i}.1/24")])
                              for i, t in enumerate(types)],
                  routes=draw(st.lists(pairs, max_size=3)) if named else [])


@settings(max_examples=200, deadline=None)
@given(routers())
def test_filter_is_symmetric_and_never_refuses_what_it_forwards(router: Router) -> None:
    f = router_filter(RTR, router)
    assert all((o, i) in f.forward for i, o in f.forward)
    assert all((f"r{i}", f"r{i}") in f.forward for i in range(len(router.interfaces)))
    owner = {str(a.ip): f"r{i}" for i, x in enumerate(router.interfaces) for a in x.addresses}
    assert all((i, owner[a]) not in f.forward for i, a in f.refuse)
    types = [x.traffic for x in router.interfaces]
    for i, o in f.forward:  # forwarding crosses traffic types only where a route says so
        a, b = types[int(i[1:])], types[int(o[1:])]
        assert a == b or (a, b) in router.routes or (b, a) in router.routes
