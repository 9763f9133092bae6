"""render(): a Datacenter as kernel state (namespaces, veths, bridges, STP costs, routes)."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Interface, ip_interface
from pathlib import Path

import pytest
from builders import add_dvs, add_portgroup, add_route, add_vmk, add_vswitch, lab, set_gateway
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vmknet.dataplane import naming
from vmknet.dataplane.kstate import (
    MANAGED_SYSCTLS,
    POLICY_TABLES,
    Address,
    KernelState,
    Link,
    Qdisc,
    Route,
    Rule,
)
from vmknet.dataplane.render import render, render_index
from vmknet.model import (
    Controller,
    Datacenter,
    Netstack,
    PhysicalNetwork,
    Router,
    RouterInterface,
    TeamingPolicy,
    derived_mac,
)
from vmknet.state.yamlio import parse

PNET = "vmkl-lab._pnet"
H1, H2 = "vmkl-lab.esx01", "vmkl-lab.esx02"
DEF1 = "vmkl-lab.esx01.defaultTcpipStack"
VMO1 = "vmkl-lab.esx01.vmotion"
EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "datacenter.yaml"


def wires(state: KernelState, ns: str, vmk: str) -> dict[str, Link]:
    """Host-side wire ends of one adapter, by vmnic token (n2, n3...)."""
    bridge = naming.adapter_bridge(vmk)
    return {link.name.split("-")[1]: link for (n, _), link in state.links.items()
            if n == ns and link.master == bridge and link.port_cost is not None}


def far_end(state: KernelState, link: Link) -> Link:
    assert link.peer is not None
    return state.links[link.peer]


def test_namespaces_for_every_host_and_every_stack_even_without_adapters() -> None:
    dc = lab(2)
    dc.hosts["esx01"].netstacks["vmotion"] = Netstack()
    state = render(dc)
    assert state.namespaces == {PNET, H1, H2, DEF1, VMO1, "vmkl-lab.esx02.defaultTcpipStack"}
    assert not state.in_namespace(VMO1).links


def test_adapter_lives_in_its_stack_with_mac_mtu_and_addresses() -> None:
    dc = lab(1)
    add_vmk(dc.hosts["esx01"], "vmk1", "vMotion", "vmotion",
            ["198.18.4.11/24", "2001:db8:4::11/64"], mtu=9000)
    dc.hosts["esx01"].vswitches["vSwitch0"].mtu = 9000
    state = render(dc)
    vmk1 = state.links[(VMO1, "vmk1")]
    assert (vmk1.kind, vmk1.mtu, vmk1.up) == ("veth", 9000, True)
    assert vmk1.mac == derived_mac("esx01", "vmk1")
    assert vmk1.peer == (H1, "vmk1-p")
    assert state.links[(H1, "vmk1-p")].master == "vmk1-br"
    bridge = state.links[(H1, "vmk1-br")]
    assert (bridge.kind, bridge.stp, bridge.bridge_priority) == ("bridge", True, 32768)
    assert {a.cidr for a in state.addresses if a.ifname == "vmk1"} == {
        "198.18.4.11/24", "2001:db8:4::11/64"}
    assert all(a.ns == VMO1 for a in state.addresses if a.ifname == "vmk1")


def test_explicit_mac_is_kept_and_disabled_adapter_is_down() -> None:
    dc = lab(1)
    vmk = add_vmk(dc.hosts["esx01"], "vmk1", "pg", ip="198.18.4.11/24", enabled=False)
    vmk.mac = "00:50:56:AA:BB:CC"
    state = render(dc)
    link = state.links[(DEF1, "vmk1")]
    assert (link.mac, link.up) == ("00:50:56:aa:bb:cc", False)
    assert not [r for r in state.routes if r.dev == "vmk1"]  # the kernel refuses them
    assert not [r for r in state.rules if r.src.startswith("198.18.4.11")]


def test_wires_only_for_active_and_standby_in_failover_order() -> None:
    dc = lab(1)
    host = dc.hosts["esx01"]
    add_vswitch(host, "vSwitch1", ["vmnic1", "vmnic2", "vmnic3"])
    add_portgroup(host, "pg", vswitch="vSwitch1", active=["vmnic3"], standby=["vmnic2"])
    add_vmk(host, "vmk1", "pg", ip="198.18.4.11/24")
    state = render(dc)
    found = wires(state, H1, "vmk1")
    assert set(found) == {"n3", "n2"}  # vmnic1 is unused: SW-4, no wire at all
    assert (found["n3"].port_cost, found["n2"].port_cost) == (10, 20)
    assert far_end(state, found["n3"]).master == "vl0"


def test_portid_spreads_adapters_of_a_port_group_over_active_uplinks() -> None:
    dc = lab(1)
    host = dc.hosts["esx01"]
    add_vswitch(host, "vSwitch1", ["vmnic2", "vmnic3"])
    add_portgroup(host, "pg", vswitch="vSwitch1")
    add_vmk(host, "vmk1", "pg", ip="198.18.4.11/24")
    add_vmk(host, "vmk2", "pg", ip="198.18.4.21/24")
    add_vmk(host, "vmk10", "pg", ip="198.18.4.31/24")
    state = render(dc)
    first = {v: min(wires(state, H1, v).items(), key=lambda kv: kv[1].port_cost or 0)[0]
             for v in ("vmk1", "vmk2", "vmk10")}
    assert first == {"vmk1": "n2", "vmk2": "n3", "vmk10": "n2"}  # vmk10 is the third port


def test_explicit_failover_does_not_spread() -> None:
    dc = lab(1)
    host = dc.hosts["esx01"]
    vs = add_vswitch(host, "vSwitch1", ["vmnic2", "vmnic3"])
    vs.teaming = TeamingPolicy(load_balancing="explicit", active=["vmnic2", "vmnic3"])
    add_portgroup(host, "pg", vswitch="vSwitch1")
    add_vmk(host, "vmk1", "pg", ip="198.18.4.11/24")
    add_vmk(host, "vmk2", "pg", ip="198.18.4.21/24")
    state = render(dc)
    assert wires(state, H1, "vmk2")["n2"].port_cost == 10


def test_each_vlan_is_its_own_segment_shared_by_hosts() -> None:
    dc = lab(2)
    for i, name in enumerate(("esx01", "esx02"), start=1):
        add_vmk(dc.hosts[name], "vmk1", "vMotion", "vmotion", f"198.18.4.1{i}/24", vlan=20)
    add_vmk(dc.hosts["esx01"], "vmk2", "vSAN", ip="198.18.12.11/24", vlan=30)
    add_vmk(dc.hosts["esx01"], "vmk3", "Trunk", ip="198.18.16.11/24", vlan=4095)
    state = render(dc)
    segments = {k[1] for k, v in state.links.items() if k[0] == PNET and v.kind == "bridge"}
    assert segments == {"vl0", "vl20", "vl30"}
    for ns in (H1, H2):
        assert far_end(state, wires(state, ns, "vmk1")["n0"]).master == "vl20"
    assert far_end(state, wires(state, H1, "vmk2")["n0"]).master == "vl30"
    assert wires(state, H1, "vmk3") == {}  # a trunk port group is plugged into nothing
    pnet_bridge = state.links[(PNET, "vl20")]
    assert (pnet_bridge.stp, pnet_bridge.bridge_priority) == (True, 0)


def test_link_down_nic_pulls_the_cable_and_speed_shapes_both_ends() -> None:
    dc = lab(1)
    dc.hosts["esx01"].nics["vmnic0"].link = "down"
    dc.hosts["esx01"].nics["vmnic0"].speed = 1000
    state = render(dc)
    near = wires(state, H1, "vmk0")["n0"]
    far = far_end(state, near)
    assert (near.up, far.up) == (True, False)
    assert state.qdiscs[near.key] == Qdisc(H1, near.name, 1000)
    assert state.qdiscs[far.key] == Qdisc(PNET, far.name, 1000)


def test_wire_mtu_is_the_switch_mtu() -> None:
    dc = lab(1)
    add_vswitch(dc.hosts["esx01"], "vSwitch1", ["vmnic1"], mtu=9000)
    add_vmk(dc.hosts["esx01"], "vmk1", "pg", vswitch="vSwitch1", ip="198.18.4.11/24")
    state = render(dc)
    near = wires(state, H1, "vmk1")["n1"]
    assert (near.mtu, far_end(state, near).mtu, state.links[(H1, "vmk1-br")].mtu) == (
        9000, 9000, 9000)
    assert state.links[(DEF1, "vmk1")].mtu == 1500


def test_a_segment_bridge_shows_its_smallest_port_mtu_as_the_kernel_does() -> None:
    dc = lab(2)
    for i, name in enumerate(("esx01", "esx02"), start=1):
        add_vswitch(dc.hosts[name], "vSwitch1", ["vmnic1"], mtu=9000 if i == 1 else 1500)
        add_vmk(dc.hosts[name], "vmk1", "pg", vswitch="vSwitch1", ip=f"198.18.4.1{i}/24",
                vlan=20)
    add_vswitch(dc.hosts["esx01"], "vSwitch2", ["vmnic2"], mtu=9000)
    add_vmk(dc.hosts["esx01"], "vmk2", "jumbo", vswitch="vSwitch2", ip="198.18.6.11/24",
            vlan=60)
    state = render(dc)
    assert state.links[(PNET, "vl20")].mtu == 1500
    assert state.links[(PNET, "vl60")].mtu == 9000


def test_stack_sysctls_resolver_and_ipv6_off() -> None:
    dc = lab(1)
    stack = dc.hosts["esx01"].netstacks["defaultTcpipStack"]
    stack.dns_servers = [IPv4Address("198.18.0.2")]
    stack.search_domains = ["lab.example.com"]
    add_vmk(dc.hosts["esx01"], "vmk1", "vMotion", "vmotion", ["198.18.4.11/24",
                                                              "2001:db8:4::11/64"])
    vmotion = dc.hosts["esx01"].netstacks["vmotion"]
    vmotion.congestion_control, vmotion.ipv6_enabled = "cubic", False
    state = render(dc)
    assert state.sysctls[(DEF1, "net.ipv4.tcp_congestion_control")] == "reno"
    assert state.sysctls[(VMO1, "net.ipv4.tcp_congestion_control")] == "cubic"
    assert state.sysctls[(VMO1, "net.ipv6.conf.all.disable_ipv6")] == "1"
    assert state.sysctls[(DEF1, "net.ipv4.conf.all.arp_ignore")] == "1"
    assert state.sysctls[(DEF1, "net.ipv4.ip_forward")] == "0"
    assert not [a for a in state.addresses if ":" in a.cidr and a.ns == VMO1]
    assert state.resolvers[DEF1].servers == ("198.18.0.2",)
    assert VMO1 not in state.resolvers


def test_policy_routing_for_multi_nic_vmotion_in_one_subnet() -> None:
    dc = lab(1)
    host = dc.hosts["esx01"]
    add_vmk(host, "vmk1", "vMotion-A", "vmotion", "198.18.4.11/24")
    add_vmk(host, "vmk2", "vMotion-B", "vmotion", "198.18.4.21/24")
    set_gateway(host, "vmotion", "198.18.4.1")
    state = render(dc).in_namespace(VMO1)
    assert Route(VMO1, "default", "198.18.4.1", dev="vmk1") in state.routes  # main table
    for n, ip in ((1, "198.18.4.11"), (2, "198.18.4.21")):
        table = 100 + n
        assert Rule(VMO1, 1000 + n, f"{ip}/32", table) in state.rules
        assert Route(VMO1, "198.18.4.0/24", None, dev=f"vmk{n}", table=table,
                     src=ip) in state.routes
        assert Route(VMO1, "default", "198.18.4.1", dev=f"vmk{n}", table=table) in state.routes


def test_gateway_override_goes_only_into_the_adapter_table() -> None:
    dc = lab(1, gateway="198.18.0.1")
    add_vmk(dc.hosts["esx01"], "vmk1", "NFS", ip="198.18.8.11/24", gateway="198.18.8.1")
    add_route(dc.hosts["esx01"], "defaultTcpipStack", "198.19.0.0/24", "198.18.8.254")
    state = render(dc).in_namespace(DEF1)
    main = {(r.dst, r.gateway, r.dev) for r in state.routes if r.table == 254}
    assert main == {("default", "198.18.0.1", "vmk0"), ("198.19.0.0/24", "198.18.8.254", "vmk1")}
    table = {(r.dst, r.gateway) for r in state.routes if r.table == 101}
    assert table == {("198.18.8.0/24", None), ("default", "198.18.8.1"),
                     ("198.19.0.0/24", "198.18.8.254")}
    # vmk0's table: its subnet and the stack gateway, which lies in it.
    assert {(r.dst, r.gateway) for r in state.routes if r.table == 100} == {
        ("198.18.0.0/24", None), ("default", "198.18.0.1")}


def test_unreachable_gateway_renders_no_route() -> None:
    dc = lab(1, gateway="198.18.99.1")  # NS-3 violation: lint's job, not a kernel error
    state = render(dc)
    assert not [r for r in state.routes if r.table == 254]


def test_routers_and_controller_join_their_segments() -> None:
    dc = lab(1)
    dc.physical = PhysicalNetwork(
        routers={"core": Router(interfaces=[
            RouterInterface(vlan=0, addresses=[IPv4Interface("198.18.0.1/24")]),
            RouterInterface(vlan=40, addresses=[ip_interface("198.18.4.1/24"),
                                                ip_interface("2001:db8:4::1/64")])])},
        controller=Controller(vlan=0, address=IPv4Interface("198.18.0.250/24"),
                              gateway=IPv4Address("198.18.0.1")),
    )
    state = render(dc)
    rns, cns = "vmkl-lab._rtr.core", "vmkl-lab._ctl"
    assert state.sysctls[(rns, "net.ipv4.ip_forward")] == "1"
    assert state.links[(rns, "r1")].peer == (PNET, "core-1")
    assert state.links[(PNET, "core-1")].master == "vl40"
    assert Address(rns, "r1", "2001:db8:4::1/64") in state.addresses
    assert state.links[(cns, "ctl0")].peer == (PNET, "ctl")
    assert state.links[(PNET, "ctl")].master == "vl0"
    assert Route(cns, "default", "198.18.0.1", dev="ctl0") in state.routes


def test_distributed_port_group_is_one_segment_on_every_member_host() -> None:
    dc = lab(2)
    add_dvs(dc, "dvs01", portgroups={"vSAN": 50}, nics=("vmnic2", "vmnic3"))
    for i, name in enumerate(("esx01", "esx02"), start=1):
        add_vmk(dc.hosts[name], "vmk1", "vSAN", ip=f"198.18.12.1{i}/24", dvs="dvs01")
    state = render(dc)
    for ns in (H1, H2):
        found = wires(state, ns, "vmk1")
        assert set(found) == {"n2", "n3"}  # Uplink 1/2 -> vmnic2/3
        assert {far_end(state, w).master for w in found.values()} == {"vl50"}


def test_render_is_deterministic_and_maps_back() -> None:
    dc = Datacenter.model_validate(parse(EXAMPLE.read_text()))
    first, again = render(dc), render(Datacenter.model_validate(parse(EXAMPLE.read_text())))
    assert first == again
    index = render_index(dc)
    assert set(index) == set(first.links)
    wire = next(k for k, e in index.items() if e.role == "wire-pnet" and e.vmk == "vmk1")
    assert index[wire].host is not None and index[wire].nic in ("vmnic2", "vmnic3")


def test_parse_ns_maps_namespace_names_back() -> None:
    assert naming.parse_ns(VMO1) == naming.NsInfo("stack", host="esx01", stack="vmotion")
    assert naming.parse_ns(H1, hosts=["esx01"]) == naming.NsInfo("host", host="esx01")
    dotted = naming.stack_ns("lab", "esx01.example.com", "vmotion")
    assert naming.parse_ns(dotted, hosts=["esx01.example.com"]) == naming.NsInfo(
        "stack", host="esx01.example.com", stack="vmotion")
    assert naming.parse_ns(PNET) == naming.NsInfo("pnet")
    assert naming.parse_ns("vmkl-lab2.esx01") is None
    with pytest.raises(ValueError):
        naming.prefix("bad.lab")


def test_policy_tables_skip_the_kernel_reserved_ones() -> None:
    assert naming.policy_table("vmk1") == 101
    tables = [naming.policy_table(f"vmk{n}") for n in range(897)]
    assert len(set(tables)) == 897 and set(tables) <= set(POLICY_TABLES) - {253, 254, 255}
    assert naming.policy_table("vmk9999") is None


def test_every_sysctl_render_sets_is_one_a_backend_reads() -> None:
    dc = Datacenter.model_validate(parse(EXAMPLE.read_text()))
    dc.physical = PhysicalNetwork(routers={"core": Router()}, controller=Controller(
        address=IPv4Interface("198.18.0.250/24")))
    assert {key for _, key in render(dc).sysctls} <= set(MANAGED_SYSCTLS)


# ------------------------------------------------------- property: names


def check_links(state: KernelState) -> None:
    """Names fit IFNAMSIZ; peers point back; masters are bridges in the same namespace."""
    for (ns, name), link in state.links.items():
        assert naming.fits(name) and ns in state.namespaces
        if link.kind == "veth":
            assert link.peer is not None and state.links[link.peer].peer == link.key
        if link.master is not None:
            assert state.links[(ns, link.master)].kind == "bridge"


names = st.from_regex(r"[a-z][a-z0-9-]{0,20}", fullmatch=True)


@st.composite
def datacenters(draw: st.DrawFn) -> Datacenter:
    dc = lab(draw(st.integers(1, 3)))
    for h, host in enumerate(dc.hosts.values()):
        nics = draw(st.lists(st.integers(0, 99), min_size=1, max_size=4, unique=True))
        odd = draw(st.lists(names, max_size=2, unique=True))
        add_vswitch(host, "vSwitch1", [f"vmnic{n}" for n in nics] + odd)
        for name in [f"vmnic{n}" for n in nics] + odd:
            host.nics.setdefault(name, host.nics["vmnic0"])
        for n in draw(st.lists(st.integers(1, 9999), max_size=5, unique=True)):
            vlan = draw(st.sampled_from([0, 1, 4094, 4095]))
            add_vmk(host, f"vmk{n}", f"pg{n}", draw(st.sampled_from(["vmotion", "x-y_z" * 6])),
                    f"198.18.{h}.{n % 250 + 1}/24", vswitch="vSwitch1", vlan=vlan)
    routers = draw(st.lists(names, max_size=2, unique=True))
    dc.physical = PhysicalNetwork(routers={r: Router(interfaces=[
        RouterInterface(vlan=v, addresses=[IPv4Interface("198.18.100.1/24")])
        for v in range(draw(st.integers(0, 12)))]) for r in routers})
    return dc


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(datacenters())
def test_any_datacenter_renders_valid_unique_names(dc: Datacenter) -> None:
    check_links(render(dc))


def test_example_datacenter_links_are_consistent() -> None:
    check_links(render(Datacenter.model_validate(parse(EXAMPLE.read_text()))))
