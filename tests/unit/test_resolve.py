"""resolve(): the one path chooser (SPEC section 5, PATH-1..8, EX-5)."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv6Address

import pytest
from builders import (
    add_dvs,
    add_route,
    add_vmk,
    big_datacenter,
    host_name,
    ip_of,
    lab,
    set_gateway,
    vmotion_lab,
)
from hypothesis import given, settings
from hypothesis import strategies as st

from vmknet.errors import InvalidArgument, NoPath, NotFound, RuleViolation
from vmknet.model import Datacenter, Service
from vmknet.resolve import Flow, can_reach, effective_adapters, resolve, stripe

S = Service


def pairs(flows: list[Flow]) -> list[tuple[str, str]]:
    return [(f.source.vmknic, f.target.vmknic) for f in flows]


# --- EX-5 / PATH-1: vMotion --------------------------------------------------------------

def test_path1_vmotion_stack_adapters_same_subnet() -> None:
    flows = resolve(vmotion_lab(2), S.VMOTION, "esx01", "esx02")
    assert pairs(flows) == [("vmk1", "vmk1")]
    f = flows[0]
    assert f.next_hop is None and f.source.netstack == "vmotion"
    assert str(f.target.address) == "198.18.4.12/24"
    assert "same subnet 198.18.4.0/24" in f.reason and "PATH-1" in f.reason


def test_ex5_default_stack_tagged_vmotion_counts() -> None:
    dc = lab(2)
    for i in (1, 2):
        add_vmk(dc.hosts[host_name(i)], "vmk1", "vMotion", ip=ip_of(i, "198.18.4"),
                services=["VMotion"])
    assert pairs(resolve(dc, S.VMOTION, "esx01", "esx02")) == [("vmk1", "vmk1")]


def test_ex5_vmotion_stack_wins_over_tagged_default_adapter() -> None:
    dc = vmotion_lab(2)
    dc.hosts["esx01"].vmknics["vmk0"].services.append(S.VMOTION)  # would be refused (EX-3)
    assert effective_adapters(dc, "esx01", S.VMOTION) == [("vmk1", "on the vmotion stack")]


def test_ex5_no_vmotion_adapter_is_refused() -> None:
    dc = vmotion_lab(2)
    del dc.hosts["esx02"].vmknics["vmk1"]
    with pytest.raises(RuleViolation) as err:
        resolve(dc, S.VMOTION, "esx01", "esx02")
    assert err.value.code == "EX-5"
    assert err.value.message.startswith("Host esx02 has no vMotion adapter")
    assert "-N vmotion" in err.value.message and err.value.details["host"] == "esx02"


def test_ex5_disabled_or_addressless_adapter_carries_nothing() -> None:
    dc = vmotion_lab(2)
    dc.hosts["esx02"].vmknics["vmk1"].enabled = False
    with pytest.raises(RuleViolation, match=r"esx02 has no vMotion adapter \(vmk1 disabled"):
        resolve(dc, S.VMOTION, "esx01", "esx02")
    dc = vmotion_lab(2)
    add_vmk(dc.hosts["esx01"], "vmk2", "vMotion", "vmotion")  # no address
    assert [n for n, _ in effective_adapters(dc, "esx01", S.VMOTION)] == ["vmk1"]


def test_custom_stack_adapter_carries_no_tagged_service_svc4() -> None:
    dc = lab(2)
    add_vmk(dc.hosts["esx01"], "vmk1", "app", "custom1", "198.18.4.11/24", ["VMotion"])
    assert effective_adapters(dc, "esx01", S.VMOTION) == []


def test_same_host_is_invalid_and_unknown_host_not_found() -> None:
    dc = vmotion_lab(2)
    with pytest.raises(InvalidArgument):
        resolve(dc, S.VMOTION, "esx01", "esx01")
    with pytest.raises(NotFound):
        resolve(dc, S.VMOTION, "esx01", "esx09")


def multi_nic(dc: Datacenter, host: int, count: int, net: str = "198.18.4") -> None:
    for k in range(1, count + 1):
        add_vmk(dc.hosts[host_name(host)], f"vmk{k}", f"vMotion-{k}", "vmotion",
                f"{net}.{10 * k + host}/24")


def test_path1_multi_nic_two_by_two_stripes_over_both() -> None:
    dc = lab(2)
    multi_nic(dc, 1, 2)
    multi_nic(dc, 2, 2)
    flows = resolve(dc, S.VMOTION, "esx01", "esx02")
    assert pairs(flows) == [("vmk1", "vmk1"), ("vmk2", "vmk2")]
    assert flows[1].reason == (
        "multi-NIC vMotion stream 2/2: vmk2 -> vmk2, same subnet 198.18.4.0/24 (PATH-1)"
    )


def test_path1_every_adapter_used_at_least_once_uneven() -> None:
    dc = lab(2)
    multi_nic(dc, 1, 1)
    multi_nic(dc, 2, 3)
    assert pairs(resolve(dc, S.VMOTION, "esx01", "esx02")) == [
        ("vmk1", "vmk1"), ("vmk1", "vmk2"), ("vmk1", "vmk3")]
    assert pairs(resolve(dc, S.VMOTION, "esx02", "esx01")) == [
        ("vmk1", "vmk1"), ("vmk2", "vmk1"), ("vmk3", "vmk1")]


def test_path1_prefers_same_subnet_pairs() -> None:
    dc = lab(2)
    for i in (1, 2):
        h = dc.hosts[host_name(i)]
        add_vmk(h, "vmk1", "vMotion-A", "vmotion", ip_of(i, "198.18.4"))
        add_vmk(h, "vmk2", "vMotion-B", "vmotion", ip_of(i, "198.18.5"))
        add_route(h, "vmotion", "198.18.5.0/24" if i == 1 else "198.18.4.0/24",
                  f"198.18.{4 if i == 1 else 5}.1")
    flows = resolve(dc, S.VMOTION, "esx01", "esx02")
    assert pairs(flows) == [("vmk1", "vmk1"), ("vmk2", "vmk2")]
    assert all(f.next_hop is None for f in flows)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.booleans(), min_size=1, max_size=5),
       st.lists(st.booleans(), min_size=1, max_size=5))
def test_path1_stripe_uses_every_reachable_adapter(src: list[bool], dst: list[bool]) -> None:
    # Adapter i is on net A (True) or B (False); only same-net pairs reach each other.
    from vmknet.reach import Reach

    dummy = Reach(None, None, None, None, "")  # type: ignore[arg-type]
    ok = {(i, j): dummy for i, a in enumerate(src) for j, b in enumerate(dst) if a == b}
    got = stripe(len(src), len(dst), ok)
    assert got == stripe(len(src), len(dst), ok)  # deterministic
    assert all(p in ok for p in got)
    assert {i for i, _ in got} == {i for i, _ in ok}
    assert {j for _, j in got} == {j for _, j in ok}


# --- reachability: VLANs, routes, PATH-7, NoPath ------------------------------------------

def test_vlan_mismatch_is_no_path() -> None:
    dc = lab(2)
    add_vmk(dc.hosts["esx01"], "vmk1", "vMotion", "vmotion", ip_of(1, "198.18.4"), vlan=20)
    add_vmk(dc.hosts["esx02"], "vmk1", "vMotion", "vmotion", ip_of(2, "198.18.4"), vlan=30)
    with pytest.raises(NoPath) as err:
        resolve(dc, S.VMOTION, "esx01", "esx02")
    msg = err.value.message
    assert "esx01" in msg and "esx02" in msg and "vmk1 -> vmk1" in msg
    assert "VLAN mismatch" in msg and "VLAN 20" in msg and "VLAN 30" in msg


def test_trunk_vlan_matches_any() -> None:
    dc = lab(2)
    add_vmk(dc.hosts["esx01"], "vmk1", "vMotion", "vmotion", ip_of(1, "198.18.4"), vlan=4095)
    add_vmk(dc.hosts["esx02"], "vmk1", "vMotion", "vmotion", ip_of(2, "198.18.4"), vlan=30)
    assert len(resolve(dc, S.VMOTION, "esx01", "esx02")) == 1


def test_distributed_port_groups_same_vlan_reach() -> None:
    dc = lab(2)
    add_dvs(dc, "dvs01", portgroups={"dv-vmotion": 40, "dv-other": 41})
    add_vmk(dc.hosts["esx01"], "vmk1", "dv-vmotion", "vmotion", ip_of(1, "198.18.4"),
            dvs="dvs01")
    add_vmk(dc.hosts["esx02"], "vmk1", "dv-vmotion", "vmotion", ip_of(2, "198.18.4"),
            dvs="dvs01")
    assert len(resolve(dc, S.VMOTION, "esx01", "esx02")) == 1
    dc.hosts["esx02"].vmknics["vmk1"].dvportgroup = "dv-other"
    with pytest.raises(NoPath, match="VLAN 40"):
        resolve(dc, S.VMOTION, "esx01", "esx02")


def test_different_subnets_without_route_is_no_path() -> None:
    dc = lab(2)
    add_vmk(dc.hosts["esx01"], "vmk1", "vMotion", "vmotion", "198.18.4.11/24")
    add_vmk(dc.hosts["esx02"], "vmk1", "vMotion", "vmotion", "198.18.5.12/24")
    with pytest.raises(NoPath, match=r"different subnets .* no route"):
        resolve(dc, S.VMOTION, "esx01", "esx02")


def routed_vmotion() -> Datacenter:
    dc = lab(2)
    add_vmk(dc.hosts["esx01"], "vmk1", "vMotion", "vmotion", "198.18.4.11/24")
    add_vmk(dc.hosts["esx02"], "vmk1", "vMotion", "vmotion", "198.18.5.12/24")
    set_gateway(dc.hosts["esx01"], "vmotion", "198.18.4.1")
    set_gateway(dc.hosts["esx02"], "vmotion", "198.18.5.1")
    return dc


def test_routed_by_stack_default_gateways_both_ways() -> None:
    flows = resolve(routed_vmotion(), S.VMOTION, "esx01", "esx02")
    assert flows[0].next_hop == IPv4Address("198.18.4.1")
    assert "198.18.4.1" in flows[0].reason and "198.18.5.1" in flows[0].reason


def test_return_direction_is_required() -> None:
    dc = routed_vmotion()
    dc.hosts["esx02"].netstacks["vmotion"].gateway = None
    with pytest.raises(NoPath, match="no route from esx02/vmk1"):
        resolve(dc, S.VMOTION, "esx01", "esx02")


def test_longest_prefix_route_wins_over_default() -> None:
    dc = routed_vmotion()
    add_route(dc.hosts["esx01"], "vmotion", "198.18.0.0/16", "198.18.4.2")
    add_route(dc.hosts["esx01"], "vmotion", "198.18.5.0/24", "198.18.4.3")
    add_route(dc.hosts["esx01"], "vmotion", "198.18.6.0/24", "198.18.4.4")
    flows = resolve(dc, S.VMOTION, "esx01", "esx02")
    assert flows[0].next_hop == IPv4Address("198.18.4.3")
    assert "route 198.18.5.0/24" in flows[0].reason


def test_gateway_outside_adapter_subnet_is_not_usable() -> None:
    dc = routed_vmotion()
    dc.hosts["esx01"].netstacks["vmotion"].gateway = IPv4Address("198.18.9.1")
    with pytest.raises(NoPath, match="outside its subnet"):
        resolve(dc, S.VMOTION, "esx01", "esx02")


def test_path7_gateway_override_only_for_its_adapter() -> None:
    dc = lab(2)
    h1, h2 = dc.hosts["esx01"], dc.hosts["esx02"]
    add_vmk(h1, "vmk1", "vMotion-A", "vmotion", "198.18.4.11/24", gateway="198.18.4.254")
    add_vmk(h1, "vmk2", "vMotion-B", "vmotion", "198.18.6.11/24")
    add_vmk(h2, "vmk1", "vMotion", "vmotion", "198.18.5.12/24")
    set_gateway(h2, "vmotion", "198.18.5.1")
    flows = resolve(dc, S.VMOTION, "esx01", "esx02")
    # vmk2 has no override and the stack has no gateway: only vmk1 leaves via its override.
    assert pairs(flows) == [("vmk1", "vmk1")]
    assert flows[0].next_hop == IPv4Address("198.18.4.254") and "PATH-7" in flows[0].reason
    assert h1.netstacks["vmotion"].gateway is None and not h1.netstacks["vmotion"].routes
    assert can_reach(dc, "esx01", "vmk2", "esx02", "vmk1") is None


def test_ipv6_only_adapters() -> None:
    dc = lab(2)
    add_vmk(dc.hosts["esx01"], "vmk1", "vMotion", "vmotion", "2001:db8:4::11/64")
    add_vmk(dc.hosts["esx02"], "vmk1", "vMotion", "vmotion", "2001:db8:5::12/64")
    set_gateway(dc.hosts["esx01"], "vmotion", "2001:db8:4::1")
    set_gateway(dc.hosts["esx02"], "vmotion", "fe80::1")
    flows = resolve(dc, S.VMOTION, "esx01", "esx02")
    assert flows[0].next_hop == IPv6Address("2001:db8:4::1")
    assert flows[0].target.address.version == 6


def test_ipv4_preferred_when_both_ends_have_it() -> None:
    dc = lab(2)
    for i in (1, 2):
        add_vmk(dc.hosts[host_name(i)], "vmk1", "vMotion", "vmotion",
                [ip_of(i, "198.18.4"), f"2001:db8:4::{i}/64"])
    assert resolve(dc, S.VMOTION, "esx01", "esx02")[0].source.address.version == 4


# --- PATH-2 provisioning -------------------------------------------------------------------

def test_path2_provisioning_adapters_used() -> None:
    dc = lab(2)
    for i in (1, 2):
        add_vmk(dc.hosts[host_name(i)], "vmk2", "Prov", "vSphereProvisioning",
                ip_of(i, "198.18.6"))
    flows = resolve(dc, S.PROVISIONING, "esx01", "esx02")
    assert pairs(flows) == [("vmk2", "vmk2")] and "PATH-2" in flows[0].reason


def test_path2_fallback_to_management_when_no_provisioning_adapter() -> None:
    dc = lab(2)
    assert effective_adapters(dc, "esx01", S.PROVISIONING)[0][0] == "vmk0"
    assert "fallback to management (PATH-2)" in effective_adapters(
        dc, "esx01", S.PROVISIONING)[0][1]
    flows = resolve(dc, S.PROVISIONING, "esx01", "esx02")
    assert pairs(flows) == [("vmk0", "vmk0")]
    assert "fallback to management (PATH-2)" in flows[0].reason


def test_path2_source_falls_back_when_its_provisioning_adapter_cannot_reach() -> None:
    dc = lab(2)
    # Target esx02 receives on provisioning vmk2 in the management subnet;
    # esx01's provisioning vmk2 sits in another subnet with no route.
    add_vmk(dc.hosts["esx01"], "vmk2", "Prov", "vSphereProvisioning", "198.18.6.11/24")
    add_vmk(dc.hosts["esx02"], "vmk2", "Prov", "vSphereProvisioning", "198.18.0.22/24")
    flows = resolve(dc, S.PROVISIONING, "esx01", "esx02")
    assert pairs(flows) == [("vmk0", "vmk2")]
    assert "fallback to management (PATH-2)" in flows[0].reason


def test_path2_no_path_after_fallback() -> None:
    dc = lab(2)
    add_vmk(dc.hosts["esx01"], "vmk2", "Prov", "vSphereProvisioning", "198.18.6.11/24")
    add_vmk(dc.hosts["esx02"], "vmk2", "Prov", "vSphereProvisioning", "198.18.7.12/24")
    with pytest.raises(NoPath) as err:
        resolve(dc, S.PROVISIONING, "esx01", "esx02")
    assert "vmk2 -> vmk2" in err.value.message and "vmk0 -> vmk2" in err.value.message


# --- PATH-3 FT, PATH-4 replication, PATH-5 vSAN, PATH-6 management ----------------------

def test_path3_ft_adapters_both_ends() -> None:
    dc = lab(2)
    for i in (1, 2):
        add_vmk(dc.hosts[host_name(i)], "vmk3", "FT", ip=ip_of(i, "198.18.8"),
                services=[S.FT_LOGGING])
    assert pairs(resolve(dc, S.FT_LOGGING, "esx01", "esx02")) == [("vmk3", "vmk3")]
    del dc.hosts["esx02"].vmknics["vmk3"]
    with pytest.raises(RuleViolation) as err:
        resolve(dc, S.FT_LOGGING, "esx01", "esx02")
    assert err.value.code == "PATH-3" and "esx02" in err.value.message


def test_path4_replication_leg_source_tagged_to_server_management() -> None:
    dc = lab(2)
    add_vmk(dc.hosts["esx01"], "vmk4", "Repl", ip="198.18.0.41/24",
            services=[S.REPLICATION])
    add_vmk(dc.hosts["esx02"], "vmk4", "Repl", ip="198.18.0.42/24",
            services=[S.REPLICATION])  # a server receives on management, not here
    flows = resolve(dc, S.REPLICATION, "esx01", "esx02")
    assert pairs(flows) == [("vmk4", "vmk0")] and "PATH-4" in flows[0].reason


def test_path4_replication_source_falls_back_to_management() -> None:
    flows = resolve(lab(2), S.REPLICATION, "esx01", "esx02")
    assert pairs(flows) == [("vmk0", "vmk0")] and "fallback to management" in flows[0].reason


def test_path4_nfc_leg_server_management_to_target_nfc() -> None:
    dc = lab(2)
    add_vmk(dc.hosts["esx02"], "vmk5", "NFC", ip="198.18.0.52/24",
            services=[S.REPLICATION_NFC])
    flows = resolve(dc, S.REPLICATION_NFC, "esx01", "esx02")
    assert pairs(flows) == [("vmk0", "vmk5")]
    assert pairs(resolve(dc, S.REPLICATION_NFC, "esx02", "esx01")) == [("vmk0", "vmk0")]


def test_path5_vsan_and_witness_fallback() -> None:
    dc = lab(2)
    for i in (1, 2):
        add_vmk(dc.hosts[host_name(i)], "vmk6", "vSAN", ip=ip_of(i, "198.18.10"),
                services=[S.VSAN])
    assert pairs(resolve(dc, S.VSAN, "esx01", "esx02")) == [("vmk6", "vmk6")]
    assert pairs(resolve(dc, S.VSAN_WITNESS, "esx01", "esx02")) == [("vmk6", "vmk6")]
    add_vmk(dc.hosts["esx01"], "vmk7", "Witness", ip=ip_of(1, "198.18.10").replace(
        ".11/", ".71/"), services=[S.VSAN_WITNESS])
    assert pairs(resolve(dc, S.VSAN_WITNESS, "esx01", "esx02")) == [("vmk7", "vmk6")]
    with pytest.raises(NoPath, match="esx01 has no VSAN adapter"):
        resolve(lab(2), S.VSAN, "esx01", "esx02")


def test_path6_management() -> None:
    flows = resolve(lab(2), S.MANAGEMENT, "esx01", "esx02")
    assert pairs(flows) == [("vmk0", "vmk0")] and "PATH-6" in flows[0].reason


# --- scale: a call touches two hosts only (the time is measured in bench/, not here) -------

class _NoScan(dict[str, object]):
    """A hosts mapping that fails when anything walks all of it."""

    def __iter__(self):  # type: ignore[no-untyped-def]
        raise AssertionError("resolve() walked every host")

    def values(self):  # type: ignore[no-untyped-def]
        raise AssertionError("resolve() walked every host")

    def items(self):  # type: ignore[no-untyped-def]
        raise AssertionError("resolve() walked every host")


def test_resolve_in_a_1000_host_datacenter_touches_two_hosts() -> None:
    dc = big_datacenter(1000)
    dc.hosts = _NoScan(dc.hosts)  # type: ignore[assignment]
    flows = resolve(dc, S.VMOTION, "esx500", "esx999")
    assert len(flows) == 4
