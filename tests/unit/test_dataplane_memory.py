"""MemoryBackend and apply(): kernel preconditions, minimal changes, all-or-nothing."""

from __future__ import annotations

from pathlib import Path

import pytest
from builders import add_portgroup, add_vmk, add_vswitch, lab, set_gateway

from vmknet.dataplane.apply import FaultInjector, apply, destroy, rollback
from vmknet.dataplane.base import Backend
from vmknet.dataplane.kops import (
    AddAddress,
    AddLink,
    AddRoute,
    CreateNamespace,
    DeleteAddress,
    DeleteLink,
    DeleteNamespace,
    DeleteRoute,
    KernelOp,
    ModifyLink,
    SetQdisc,
    SetSysctl,
)
from vmknet.dataplane.kstate import Address, KernelState, Link, Route
from vmknet.dataplane.memory import MemoryBackend
from vmknet.dataplane.plan import plan
from vmknet.dataplane.render import render
from vmknet.errors import DataplaneError, InvalidArgument, RuleViolation
from vmknet.model import Datacenter, TeamingPolicy
from vmknet.state.yamlio import parse

PREFIX = "vmkl-lab."
NS = "vmkl-lab.t"
EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "datacenter.yaml"


def datacenter() -> Datacenter:
    """Two hosts; esx01 has two vMotion adapters spread over vmnic2/vmnic3 with a gateway."""
    dc = lab(2, gateway="198.18.0.1")
    for i, name in enumerate(dc.hosts, start=1):
        host = dc.hosts[name]
        add_vswitch(host, "vSwitch1", ["vmnic2", "vmnic3"], mtu=9000)
        add_portgroup(host, "vMotion", vswitch="vSwitch1", vlan=20)
        add_vmk(host, "vmk1", "vMotion", "vmotion", f"198.18.4.1{i}/24", mtu=9000)
        add_vmk(host, "vmk2", "vMotion", "vmotion", f"198.18.4.2{i}/24", mtu=9000)
        set_gateway(host, "vmotion", "198.18.4.1")
    return dc


def applied(dc: Datacenter) -> MemoryBackend:
    backend = MemoryBackend()
    apply(backend, render(dc), PREFIX)
    return backend


def err_of(backend: MemoryBackend, op: KernelOp) -> str:
    with pytest.raises(DataplaneError) as info:
        backend.execute(op)
    return str(info.value.details["errno"])


# ---------------------------------------------------------------- apply


def test_apply_from_empty_then_again_changes_nothing() -> None:
    backend = MemoryBackend()
    desired = render(datacenter())
    first = apply(backend, desired, PREFIX)
    assert first.changed and first.verify_attempts == 1
    assert backend.read(PREFIX).namespaces == desired.namespaces
    again = apply(backend, desired, PREFIX)
    assert again.ops == [] and not again.changed


def test_example_datacenter_applies_and_destroys_cleanly() -> None:
    desired = render(Datacenter.model_validate(parse(EXAMPLE.read_text())))
    backend = MemoryBackend()
    apply(backend, desired, PREFIX)
    assert plan(backend.read(PREFIX), desired) == []
    destroy(backend, PREFIX)
    assert backend.read("") == KernelState()


def test_mtu_change_is_only_link_modifications_on_that_switch() -> None:
    dc = datacenter()
    backend = applied(dc)
    for host in dc.hosts.values():
        host.vswitches["vSwitch1"].mtu = 8000
    result = apply(backend, render(dc), PREFIX)
    assert result.ops and all(isinstance(op, ModifyLink) for op in result.ops)
    assert {op.after.mtu for op in result.ops if isinstance(op, ModifyLink)} == {8000}
    # vmk1/vmk2 themselves keep 9000: only switch-side links change.
    assert all(op.after.ns.count(".") == 1 for op in result.ops if isinstance(op, ModifyLink))


def test_vlan_change_moves_wires_to_another_segment() -> None:
    dc = datacenter()
    backend = applied(dc)
    for host in dc.hosts.values():
        host.vswitches["vSwitch1"].portgroups["vMotion"].vlan = 40
    ops = apply(backend, render(dc), PREFIX).ops
    assert {type(op) for op in ops} == {AddLink, ModifyLink, DeleteLink}
    assert [op.link.name for op in ops if isinstance(op, AddLink)] == ["vl40"]
    assert [op.link.name for op in ops if isinstance(op, DeleteLink)] == ["vl20"]
    moved = [op.after for op in ops if isinstance(op, ModifyLink) and op.after.master]
    assert len(moved) == 8 and {link.master for link in moved} == {"vl40"}


def test_teaming_change_re_costs_and_unused_uplink_loses_its_wire() -> None:
    dc = datacenter()
    backend = applied(dc)
    for host in dc.hosts.values():
        host.vswitches["vSwitch1"].teaming = TeamingPolicy(load_balancing="explicit",
                                                           active=["vmnic3"])
    ops = apply(backend, render(dc), PREFIX).ops
    assert {type(op) for op in ops} == {SetQdisc, DeleteLink, ModifyLink}
    ends = [{op.link.name, op.peer_link.name} for op in ops
            if isinstance(op, DeleteLink) and op.peer_link is not None]
    assert len(ends) == 4  # one op per pair, two adapters on two hosts
    assert {n for e in ends for n in e if n.startswith("vmk")} == {"vmk1-n2", "vmk2-n2"}
    assert {op.after.port_cost for op in ops if isinstance(op, ModifyLink)} == {10}


def test_disabling_an_adapter_drops_its_routes_first() -> None:
    dc = datacenter()
    backend = applied(dc)
    dc.hosts["esx01"].vmknics["vmk1"].enabled = False
    ops = apply(backend, render(dc), PREFIX).ops
    down = next(i for i, op in enumerate(ops) if isinstance(op, ModifyLink))
    assert all(isinstance(op, DeleteRoute | AddRoute | ModifyLink | SetSysctl)
               or type(op).__name__ == "DeleteRule" for op in ops)
    assert max(i for i, op in enumerate(ops) if isinstance(op, DeleteRoute)) < down
    dc.hosts["esx01"].vmknics["vmk1"].enabled = True
    apply(backend, render(dc), PREFIX)
    assert plan(backend.read(PREFIX), render(dc)) == []


def test_desired_state_outside_the_prefix_is_refused() -> None:
    with pytest.raises(InvalidArgument):
        apply(MemoryBackend(), render(datacenter(), lab="other"), PREFIX)
    with pytest.raises(InvalidArgument):
        apply(MemoryBackend(), KernelState(), "")


# ---------------------------------------------------- all or nothing


def transitions() -> list[tuple[Datacenter | None, Datacenter]]:
    changed = datacenter()
    for name, host in changed.hosts.items():
        host.vswitches["vSwitch1"].portgroups["vMotion"].vlan = 40
        host.vswitches["vSwitch1"].mtu = 8000
        host.vmknics["vmk2"].enabled = name != "esx01"
        host.vmknics["vmk1"].ipv4.address = None
        host.vmknics["vmk1"].ipv4.type = "none"
    shrunk = lab(1)
    return [(None, datacenter()), (datacenter(), changed), (datacenter(), shrunk)]


@pytest.mark.parametrize("start,goal", transitions())
def test_a_fault_at_any_step_leaves_the_state_exactly_as_before(
        start: Datacenter | None, goal: Datacenter) -> None:
    base = applied(start) if start else MemoryBackend()
    before = base.read("")
    count = len(plan(before, render(goal)))
    assert count > 0
    for fail_at in range(count):
        backend = MemoryBackend(before)
        with pytest.raises(DataplaneError) as info:
            apply(FaultInjector(backend, fail_at), render(goal), PREFIX)
        assert info.value.details["step"] == fail_at
        assert info.value.details["rollback_failures"] == []
        assert backend.read("") == before, fail_at


def test_post_check_failure_rolls_everything_back() -> None:
    backend = applied(lab(1))
    before = backend.read("")

    def controller_cannot_reach_vmk0() -> None:
        raise RuleViolation("REQ-5", "the controller lost esx01's management adapter")

    with pytest.raises(RuleViolation) as info:
        apply(backend, render(datacenter()), PREFIX, post_check=controller_cannot_reach_vmk0)
    assert info.value.code == "REQ-5" and info.value.details["rolled_back"] is True
    assert info.value.details["residue"] == []
    assert backend.read("") == before


def test_post_check_crash_becomes_a_dataplane_error() -> None:
    backend = MemoryBackend()

    def broken() -> None:
        raise RuntimeError("ping not found")

    with pytest.raises(DataplaneError, match="post-check"):
        apply(backend, render(lab(1)), PREFIX, post_check=broken)
    assert backend.read("") == KernelState()


class Forgetful:
    """A backend whose read() misses one link: verification must catch it."""

    name = "forgetful"

    def __init__(self) -> None:
        self.inner = MemoryBackend()

    def read(self, prefix: str) -> KernelState:
        state = self.inner.read(prefix)
        state.links.pop(("vmkl-lab.esx01", "vmk0-br"), None)
        return state

    def execute(self, op: KernelOp) -> None:
        self.inner.execute(op)


def test_verify_mismatch_rolls_back_and_lists_differences() -> None:
    backend = Forgetful()
    typed: Backend = backend
    with pytest.raises(DataplaneError) as info:
        apply(typed, render(lab(1)), PREFIX, settle_seconds=0)
    assert any("vmk0-br" in d for d in info.value.details["differences"])
    assert backend.inner.read("") == KernelState()


def test_destroy_leaves_nothing_and_other_labs_alone() -> None:
    backend = applied(datacenter())
    apply(backend, render(lab(1), lab="lab2"), "vmkl-lab2.")
    destroy(backend, PREFIX)
    assert backend.read(PREFIX) == KernelState()
    assert backend.read("vmkl-lab2.").namespaces


def test_rollback_reports_steps_it_could_not_undo() -> None:
    backend = MemoryBackend()
    done: list[KernelOp] = [CreateNamespace(NS), CreateNamespace(NS + "2")]
    backend.execute(done[0])  # the second never ran: its inverse fails
    failures = rollback(backend, done)
    assert len(failures) == 1 and "DeleteNamespace" in failures[0]
    assert backend.read("") == KernelState()


# -------------------------------------------------- kernel preconditions


@pytest.fixture
def kernel() -> MemoryBackend:
    backend = MemoryBackend()
    backend.execute(CreateNamespace(NS))
    backend.execute(AddLink(Link(NS, "br0", "bridge")))
    backend.execute(AddLink(Link(NS, "a", "veth", peer=(NS, "b"), master="br0"),
                            Link(NS, "b", "veth", peer=(NS, "a"))))
    backend.execute(AddAddress(Address(NS, "b", "198.18.4.11/24")))
    return backend


def test_refusals_carry_the_kernel_errno(kernel: MemoryBackend) -> None:
    before = kernel.read("")
    assert err_of(kernel, CreateNamespace(NS)) == "EEXIST"
    assert err_of(kernel, AddLink(Link("vmkl-lab.none", "x", "bridge"))) == "ENOENT"
    assert err_of(kernel, AddLink(Link(NS, "br0", "bridge"))) == "EEXIST"
    assert err_of(kernel, AddLink(Link(NS, "much-too-long-name", "bridge"))) == "EINVAL"
    assert err_of(kernel, AddLink(Link(NS, "c", "ifb", master="a"))) == "EOPNOTSUPP"
    assert err_of(kernel, AddLink(Link(NS, "c", "ifb", master="nope"))) == "ENODEV"
    assert err_of(kernel, DeleteLink(Link(NS, "zz", "ifb"))) == "ENODEV"
    assert err_of(kernel, DeleteNamespace(NS)) == "EBUSY"
    assert err_of(kernel, AddAddress(Address(NS, "b", "198.18.4.11/24"))) == "EEXIST"
    assert err_of(kernel, DeleteAddress(Address(NS, "b", "198.18.5.11/24"))) == "EADDRNOTAVAIL"
    assert err_of(kernel, AddRoute(Route(NS, "default", "198.18.9.1"))) == "ENETUNREACH"
    assert err_of(kernel, DeleteRoute(Route(NS, "default", "198.18.4.1"))) == "ESRCH"
    kernel.execute(SetSysctl(NS, "net.ipv6.conf.all.disable_ipv6", None, "1"))
    assert err_of(kernel, AddAddress(Address(NS, "b", "2001:db8:4::11/64"))) == "EACCES"
    kernel.execute(SetSysctl(NS, "net.ipv6.conf.all.disable_ipv6", "1", "0"))
    assert kernel.read("").links == before.links and kernel.read("").addresses == before.addresses


def test_kernel_side_effects_are_mirrored(kernel: MemoryBackend) -> None:
    kernel.execute(AddRoute(Route(NS, "default", "198.18.4.1", dev="b")))
    b = kernel.state.links[(NS, "b")]
    assert b.mac is not None and kernel.state.links[(NS, "a")].port_cost == 100
    kernel.execute(ModifyLink(b, Link(NS, "b", "veth", peer=(NS, "a"), up=False)))
    assert kernel.state.links[(NS, "b")].mac == b.mac  # the MAC survives a change
    assert not kernel.state.routes  # a downed link loses its IPv4 routes
    assert err_of(kernel, AddRoute(Route(NS, "default", "198.18.4.1", dev="b"))) == "ENETDOWN"
    kernel.execute(DeleteLink(Link(NS, "br0", "bridge")))
    assert kernel.state.links[(NS, "a")].master is None  # ports are freed
    kernel.execute(DeleteLink(Link(NS, "a", "veth")))  # one end takes the pair
    assert not kernel.state.links and not kernel.state.addresses
    kernel.execute(DeleteNamespace(NS))
    assert kernel.read("") == KernelState()
