"""plan(): ordered, minimal, executable kernel ops between two states."""

from __future__ import annotations

from dataclasses import replace
from itertools import pairwise
from pathlib import Path

from builders import add_vmk, lab

from vmknet.dataplane.kops import (
    AddAddress,
    AddLink,
    AddRoute,
    AddRule,
    CreateNamespace,
    DeleteAddress,
    DeleteLink,
    DeleteNamespace,
    DeleteRoute,
    DeleteRule,
    KernelOp,
    ModifyLink,
    SetQdisc,
    SetResolver,
    SetSysctl,
)
from vmknet.dataplane.kstate import Address, KernelState, Link, Qdisc, Resolver, Route, Rule
from vmknet.dataplane.plan import canonical, describe, differences, plan
from vmknet.dataplane.render import render
from vmknet.model import Datacenter
from vmknet.state.yamlio import parse

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "datacenter.yaml"
NS, NS2 = "vmkl-t.a", "vmkl-t.b"


def example() -> KernelState:
    return render(Datacenter.model_validate(parse(EXAMPLE.read_text())))


def positions(ops: list[KernelOp], kind: type) -> list[int]:
    return [i for i, op in enumerate(ops) if isinstance(op, kind)]


def before(ops: list[KernelOp], first: type, then: type) -> bool:
    a, b = positions(ops, first), positions(ops, then)
    return not a or not b or max(a) < min(b)


def small() -> KernelState:
    """Two namespaces, a bridge with a veth port, an address, a gateway route, a policy rule."""
    s = KernelState(namespaces={NS, NS2})
    s.add_link(Link(NS, "br0", "bridge", stp=True))
    s.add_veth(Link(NS, "p0", "veth", master="br0"), Link(NS2, "vmk1", "veth", mtu=9000))
    s.addresses.add(Address(NS2, "vmk1", "198.18.4.11/24"))
    s.routes.add(Route(NS2, "default", "198.18.4.1", dev="vmk1"))
    s.rules.add(Rule(NS2, 1001, "198.18.4.11/32", 101))
    s.sysctls[(NS2, "net.ipv4.ip_forward")] = "0"
    s.qdiscs[(NS, "p0")] = Qdisc(NS, "p0", 1000)
    s.resolvers[NS2] = Resolver(NS2, ("198.18.0.2",))
    return s


def test_same_state_plans_nothing() -> None:
    assert plan(example(), example()) == []
    assert plan(small(), small()) == []


def test_creation_is_ordered_parents_first_and_veths_once() -> None:
    desired = example()
    ops = plan(KernelState(), desired)
    order = [CreateNamespace, SetSysctl, AddLink, AddAddress, AddRoute, AddRule, SetQdisc,
             SetResolver]
    for first, then in pairwise(order):
        assert before(ops, first, then), (first, then)
    adds = [op for op in ops if isinstance(op, AddLink)]
    bridges = [i for i, op in enumerate(adds) if op.link.kind == "bridge"]
    assert max(bridges) < min(i for i, op in enumerate(adds) if op.link.kind == "veth")
    veths = sum(1 for link in desired.links.values() if link.kind == "veth")
    assert sum(1 for op in adds if op.peer_link is not None) == veths // 2
    routes = [op.route for op in ops if isinstance(op, AddRoute)]
    main = [i for i, r in enumerate(routes) if r.table == 254]
    assert max(main) < min(i for i, r in enumerate(routes) if r.table != 254)


def test_deletion_is_ordered_children_first() -> None:
    ops = plan(example(), KernelState())
    order = [DeleteRule, DeleteRoute, DeleteAddress, SetQdisc, SetResolver, DeleteLink,
             DeleteNamespace]
    for first, then in pairwise(order):
        assert before(ops, first, then), (first, then)
    deletes = [op for op in ops if isinstance(op, DeleteLink)]
    assert max(i for i, op in enumerate(deletes) if op.link.kind != "bridge") < min(
        i for i, op in enumerate(deletes) if op.link.kind == "bridge")


def test_kernel_chosen_attributes_are_not_changes() -> None:
    current = small()
    for key, link in list(current.links.items()):
        current.links[key] = replace(link, mac="02:00:00:00:00:01",
                                     port_cost=100 if link.master else None,
                                     bridge_priority=32768 if link.kind == "bridge" else None)
    current.sysctls[(NS2, "net.ipv4.conf.all.forwarding")] = "0"  # a key we never set
    assert plan(current, small()) == []


def test_mtu_change_is_one_modify_keeping_the_kernel_mac() -> None:
    current = small()
    current.links[(NS2, "vmk1")] = replace(current.links[(NS2, "vmk1")], mac="02:00:00:00:00:01")
    desired = small()
    desired.links[(NS2, "vmk1")] = replace(desired.links[(NS2, "vmk1")], mtu=1500)
    ops = plan(current, desired)
    assert len(ops) == 1 and isinstance(ops[0], ModifyLink)
    assert (ops[0].after.mtu, ops[0].after.mac) == (1500, "02:00:00:00:00:01")


def test_kind_or_peer_change_deletes_and_re_adds_the_pair() -> None:
    desired = small()
    del desired.links[(NS, "p0")]
    desired.links.pop((NS2, "vmk1"))
    desired.add_veth(Link(NS, "p1", "veth", master="br0"), Link(NS2, "vmk1", "veth", mtu=9000))
    desired.qdiscs = {}
    ops = plan(small(), desired)
    deleted = [op for op in ops if isinstance(op, DeleteLink)]
    added = [op for op in ops if isinstance(op, AddLink)]
    assert len(deleted) == 1 and len(added) == 1
    assert {deleted[0].link.name, deleted[0].peer_link.name} == {"p0", "vmk1"}  # type: ignore[union-attr]
    # The address and route lived on the old vmk1: they go first and come back after.
    kinds = [type(op) for op in ops]
    assert kinds.index(DeleteRoute) < kinds.index(DeleteAddress) < kinds.index(DeleteLink)
    assert kinds.index(AddLink) < kinds.index(AddAddress) < kinds.index(AddRoute)


def test_ports_leave_a_bridge_before_it_is_deleted() -> None:
    desired = small()
    del desired.links[(NS, "br0")]
    desired.add_link(Link(NS, "br1", "bridge"))
    desired.links[(NS, "p0")] = replace(desired.links[(NS, "p0")], master="br1")
    ops = plan(small(), desired)
    text = [describe(op) for op in ops]
    unenslave = next(i for i, op in enumerate(ops)
                     if isinstance(op, ModifyLink) and op.after.master is None)
    delete = next(i for i, op in enumerate(ops) if isinstance(op, DeleteLink))
    add = next(i for i, op in enumerate(ops) if isinstance(op, AddLink))
    enslave = next(i for i, op in enumerate(ops)
                   if isinstance(op, ModifyLink) and op.after.master == "br1")
    assert unenslave < delete < add < enslave, text


def test_sysctl_records_the_value_it_replaces() -> None:
    desired = small()
    desired.sysctls[(NS2, "net.ipv4.ip_forward")] = "1"
    desired.sysctls[(NS2, "net.ipv4.tcp_congestion_control")] = "reno"
    ops = plan(small(), desired)
    assert set(ops) == {SetSysctl(NS2, "net.ipv4.ip_forward", "0", "1"),
                        SetSysctl(NS2, "net.ipv4.tcp_congestion_control", None, "reno")}


def test_deleting_an_address_takes_its_routes_along_and_back() -> None:
    desired = small()
    desired.addresses = {Address(NS2, "vmk1", "198.18.4.12/24")}
    desired.rules = set()
    ops = plan(small(), desired)
    assert DeleteRoute(Route(NS2, "default", "198.18.4.1", dev="vmk1")) in ops
    assert AddRoute(Route(NS2, "default", "198.18.4.1", dev="vmk1")) in ops


def test_canonical_spellings_compare_equal() -> None:
    a = KernelState(namespaces={NS})
    a.routes.add(Route(NS, "0.0.0.0/0", "198.18.4.1", dev="x"))
    a.routes.add(Route(NS, "2001:DB8:4:0::/64", None, dev="x"))
    a.rules.add(Rule(NS, 1, "198.18.4.11", 100))
    a.addresses.add(Address(NS, "x", "2001:0db8:0004::11/64"))
    b = KernelState(namespaces={NS})
    b.routes.add(Route(NS, "default", "198.18.4.1", dev="x"))
    b.routes.add(Route(NS, "2001:db8:4::/64", None, dev="x"))
    b.rules.add(Rule(NS, 1, "198.18.4.11/32", 100))
    b.addresses.add(Address(NS, "x", "2001:db8:4::11/64"))
    assert canonical(a) == canonical(b)
    assert differences(a, b) == []


def test_every_op_describes_itself_on_one_line() -> None:
    ops = plan(KernelState(), small()) + plan(small(), KernelState())
    ops.append(ModifyLink(Link(NS, "x", "bridge"), Link(NS, "x", "bridge", mtu=9000)))
    for op in ops:
        text = describe(op)
        assert "\n" not in text and text.startswith(type(op).__name__)


def test_adding_an_adapter_only_adds_its_objects() -> None:
    dc = lab(2)
    current = render(dc)
    add_vmk(dc.hosts["esx01"], "vmk1", "vMotion", "vmotion", "198.18.4.11/24")
    ops = plan(current, render(dc))
    assert not [op for op in ops if isinstance(op, (DeleteLink, DeleteAddress, DeleteRoute,
                                                    DeleteNamespace, ModifyLink))]
    assert CreateNamespace("vmkl-lab.esx01.vmotion") in ops
