"""lint(): one test that triggers each design rule and one that does not (SPEC ids in names)."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Interface

from builders import (
    add_cluster,
    add_dvs,
    add_nfs,
    add_route,
    add_vmk,
    add_vswitch,
    big_datacenter,
    clean_host,
    clean_lab,
    host_name,
    ip_of,
    lab,
    set_gateway,
)
from hypothesis import given, settings
from hypothesis import strategies as st

from vmknet.model import Datacenter, IscsiAdapter, Service
from vmknet.rules.lint import CHECKS, Finding, lint

S = Service


def found(dc: Datacenter, rule: str) -> list[Finding]:
    return [f for f in lint(dc) if f.rule == rule]


def test_clean_lab_has_no_findings() -> None:
    assert lint(clean_lab(3, cluster="cl01", ha=True)) == []


def test_findings_sorted_by_path_then_rule() -> None:
    dc = lab(3)
    dc.hosts["esx02"].vmknics["vmk0"].services.append(S.VMOTION)
    result = lint(dc)
    assert result == sorted(result, key=lambda f: (f.path, f.rule, f.message))
    assert [f.path for f in result][:3] == ["hosts/esx01/vmknics/vmk0",
                                            "hosts/esx02/vmknics/vmk0",
                                            "hosts/esx02/vmknics/vmk0"]


# --- REQ-1 .. REQ-6 ------------------------------------------------------------------------

def test_req1_cluster_host_without_vmotion_warns() -> None:
    dc = clean_lab(2, cluster="cl01")
    del dc.hosts["esx02"].vmknics["vmk1"]
    [f] = found(dc, "REQ-1")
    assert (f.severity, f.path) == ("warning", "hosts/esx02")
    assert "-N vmotion" in f.hint


def test_req1_host_outside_clusters_or_with_vmotion_is_fine() -> None:
    dc = clean_lab(2)
    del dc.hosts["esx02"].vmknics["vmk1"]
    assert found(dc, "REQ-1") == []
    assert found(clean_lab(2, cluster="cl01"), "REQ-1") == []


def ft_lab(n: int = 2) -> Datacenter:
    dc = clean_lab(n, cluster="cl01", ha=True, ft=True)
    for i in range(1, n + 1):
        add_vmk(dc.hosts[host_name(i)], "vmk3", "FT", ip=ip_of(i, "198.18.8"),
                services=[S.FT_LOGGING], vlan=30)
    return dc


def test_req2_ha_ft_host_without_ft_or_vmotion_is_error() -> None:
    dc = ft_lab()
    del dc.hosts["esx01"].vmknics["vmk3"]
    dc.hosts["esx02"].vmknics["vmk1"].enabled = False
    got = sorted((f.path, f.severity, "Fault" in f.message) for f in found(dc, "REQ-2"))
    assert got == [("hosts/esx01", "error", True), ("hosts/esx02", "error", False)]
    assert found(dc, "REQ-1") == []  # REQ-2 already says it, as an error


def test_req2_complete_ft_cluster_is_fine() -> None:
    assert found(ft_lab(), "REQ-2") == []
    dc = clean_lab(2, cluster="cl01", ha=True)  # FT off: no FT adapter needed
    assert found(dc, "REQ-2") == []


def vsan_lab(n: int = 3, net: str = "198.18.10") -> Datacenter:
    dc = clean_lab(n, cluster="cl01", ha=True, vsan=True)
    for i in range(1, n + 1):
        add_vmk(dc.hosts[host_name(i)], "vmk2", "vSAN", ip=ip_of(i, net),
                services=[S.VSAN], vlan=40)
    return dc


def test_req3_healthy_vsan_cluster() -> None:
    assert found(vsan_lab(), "REQ-3") == []


def test_req3_member_without_vsan_adapter() -> None:
    dc = vsan_lab()
    dc.hosts["esx03"].vmknics["vmk2"].services = []
    [f] = found(dc, "REQ-3")
    assert (f.severity, f.path) == ("error", "hosts/esx03")


def test_req3_vsan_adapters_that_cannot_reach_each_other() -> None:
    dc = vsan_lab()
    dc.hosts["esx03"].vmknics["vmk2"].ipv4.address = IPv4Interface("198.18.11.13/24")
    [f] = found(dc, "REQ-3")
    assert (f.severity, f.path) == ("error", "clusters/cl01")
    assert "esx03" in f.message and "no route" in f.message


def test_req3_routed_vsan_is_fine_and_vlan_mismatch_is_not() -> None:
    dc = vsan_lab()
    dc.hosts["esx03"].vmknics["vmk2"].ipv4.address = IPv4Interface("198.18.11.13/24")
    for i in (1, 2):
        add_route(dc.hosts[host_name(i)], "defaultTcpipStack", "198.18.11.0/24", "198.18.10.1")
    add_route(dc.hosts["esx03"], "defaultTcpipStack", "198.18.10.0/24", "198.18.11.1")
    assert found(dc, "REQ-3") == []
    dc = vsan_lab()
    dc.hosts["esx02"].vswitches["vSwitch0"].portgroups["vSAN"].vlan = 41
    [f] = found(dc, "REQ-3")
    assert "VLAN mismatch" in f.message


def test_req3_vsan_mtu_mismatch_warns() -> None:
    dc = vsan_lab()
    dc.hosts["esx01"].vswitches["vSwitch0"].mtu = 9000
    dc.hosts["esx01"].vmknics["vmk2"].mtu = 9000
    dc.hosts["esx01"].nics["vmnic0"].mtu = 9000
    [f] = found(dc, "REQ-3")
    assert (f.severity, f.path) == ("warning", "clusters/cl01")
    assert "1500 (esx02/vmk2, esx03/vmk2), 9000 (esx01/vmk2)" in f.message
    # vSAN MTU is REQ-3's large-packet check; REQ-6 speaks of the other services only.
    assert not [f for f in found(dc, "REQ-6") if "VSAN" in f.message]


def test_req4_member_falls_back_to_management_for_replication() -> None:
    dc = clean_lab(2, cluster="cl01")
    add_vmk(dc.hosts["esx01"], "vmk4", "Repl", ip="198.18.12.11/24", vlan=50,
            services=[S.REPLICATION])
    [f] = found(dc, "REQ-4")
    assert (f.severity, f.path) == ("info", "hosts/esx02")
    assert "falls back to the management adapter" in f.message


def test_req4_disabled_replication_adapter_and_no_replication() -> None:
    assert found(clean_lab(2, cluster="cl01"), "REQ-4") == []
    dc = clean_lab(2, cluster="cl01")
    for i in (1, 2):
        add_vmk(dc.hosts[host_name(i)], "vmk5", "NFC", ip=ip_of(i, "198.18.12"), vlan=50,
                services=[S.REPLICATION_NFC])
    assert found(dc, "REQ-4") == []
    dc.hosts["esx02"].vmknics["vmk5"].enabled = False
    [f] = found(dc, "REQ-4")
    assert f.path == "hosts/esx02" and "vmk5 tagged but disabled" in f.message


def test_req6_vmotion_adapters_disagree_on_mtu() -> None:
    dc = clean_lab(2, cluster="cl01")
    dc.hosts["esx01"].vswitches["vSwitch0"].mtu = 9000
    assert sorted(f.message for f in found(dc, "REQ-6")) == [
        "Switches under the Management adapters of cluster cl01 disagree on MTU: "
        "1500 (esx02/vmk0), 9000 (esx01/vmk0)",
        "Switches under the VMotion adapters of cluster cl01 disagree on MTU: "
        "1500 (esx02/vmk1), 9000 (esx01/vmk1)",
    ]
    dc.hosts["esx01"].vmknics["vmk1"].mtu = 9000
    dc.hosts["esx01"].nics["vmnic0"].mtu = 9000
    messages = [f.message for f in found(dc, "REQ-6")]
    assert any(m.startswith("VMotion adapters of cluster cl01 disagree on MTU") for m in messages)
    assert all(f.severity == "warning" for f in found(dc, "REQ-6"))


def test_req6_consistent_cluster_and_unclustered_hosts() -> None:
    assert found(clean_lab(3, cluster="cl01"), "REQ-6") == []
    dc = clean_lab(2)
    dc.hosts["esx01"].vmknics["vmk1"].mtu = 1400
    assert found(dc, "REQ-6") == []


# --- adapters, stacks, switches -----------------------------------------------------------

def test_svc6_adapter_with_two_services_warns() -> None:
    dc = lab(2)
    dc.hosts["esx01"].vmknics["vmk0"].services.append(S.VMOTION)
    [f] = found(dc, "SVC-6")
    assert (f.severity, f.path) == ("warning", "hosts/esx01/vmknics/vmk0")
    assert f.hint == "Dedicate a separate VMkernel adapter for every traffic type"
    assert found(clean_lab(2), "SVC-6") == []


def test_path8_two_adapters_in_one_subnet_on_one_stack() -> None:
    dc = clean_lab(1)
    add_vmk(dc.hosts["esx01"], "vmk2", "NFS", ip="198.18.0.51/24", vlan=10)
    [f] = found(dc, "PATH-8")
    assert (f.severity, f.path) == ("error", "hosts/esx01/netstacks/defaultTcpipStack")
    assert "vmk0, vmk2" in f.message


def test_path8_allowed_for_multi_nic_vmotion_and_iscsi_binding() -> None:
    dc = clean_lab(1)
    add_vmk(dc.hosts["esx01"], "vmk2", "vMotion-2", "vmotion", "198.18.4.21/24", vlan=20)
    assert found(dc, "PATH-8") == []
    h = dc.hosts["esx01"]
    add_vmk(h, "vmk3", "iSCSI-1", ip="198.18.14.11/24", vlan=60)
    add_vmk(h, "vmk4", "iSCSI-2", ip="198.18.14.21/24", vlan=60)
    h.storage.iscsi = IscsiAdapter(bound_vmknics=["vmk3", "vmk4"])
    assert found(dc, "PATH-8") == []
    h.storage.iscsi.bound_vmknics = ["vmk3"]
    assert len(found(dc, "PATH-8")) == 1


def test_sw5_shared_distributed_port_group_warns() -> None:
    dc = clean_lab(1)
    add_dvs(dc, "dvs01", portgroups={"dv-a": 70, "dv-b": 71})
    add_vmk(dc.hosts["esx01"], "vmk2", "dv-a", ip="198.18.16.11/24", dvs="dvs01")
    assert found(dc, "SW-5") == []
    add_vmk(dc.hosts["esx01"], "vmk3", "dv-a", ip="198.18.16.21/24", dvs="dvs01")
    [f] = found(dc, "SW-5")
    assert (f.severity, f.path) == ("warning", "distributedSwitches/dvs01/portgroups/dv-a")


def test_sw7_management_behind_one_nic_warns() -> None:
    [f] = found(lab(1), "SW-7")
    assert (f.severity, f.path) == ("warning", "hosts/esx01/vmknics/vmk0")
    assert "vmnic0" in f.message
    assert found(clean_lab(1), "SW-7") == []


def test_sw7_distributed_management_with_two_uplinks_is_fine() -> None:
    dc = clean_lab(1)
    add_dvs(dc, "dvs01", portgroups={"dv-mgmt": 10})
    h = dc.hosts["esx01"]
    h.vmknics["vmk0"].portgroup = None
    h.vmknics["vmk0"].dvs, h.vmknics["vmk0"].dvportgroup = "dvs01", "dv-mgmt"
    assert found(dc, "SW-7") == []
    dc.distributed_switches["dvs01"].hosts["esx01"] = {"Uplink 1": "vmnic2"}
    assert len(found(dc, "SW-7")) == 1


def test_sec1_vmotion_on_management_vlan_or_subnet_warns() -> None:
    dc = clean_lab(1)
    dc.hosts["esx01"].vswitches["vSwitch0"].portgroups["vMotion"].vlan = 10
    [f] = found(dc, "SEC-1")
    assert (f.severity, f.path) == ("warning", "hosts/esx01/vmknics/vmk1")
    assert "same VLAN 10 as vmk0" in f.message
    dc = clean_lab(1)
    dc.hosts["esx01"].vmknics["vmk1"].ipv4.address = IPv4Interface("198.18.0.41/24")
    assert "same subnet 198.18.0.0/24" in found(dc, "SEC-1")[0].message


def test_sec1_isolated_vmotion_is_fine() -> None:
    assert found(clean_lab(2), "SEC-1") == []


def test_mtu_adapter_above_physical_nic_mtu_warns() -> None:
    dc = clean_lab(1)
    h = dc.hosts["esx01"]
    add_vswitch(h, "vSwitch1", ["vmnic2"], mtu=9000)
    add_vmk(h, "vmk2", "Storage", ip="198.18.14.11/24", vswitch="vSwitch1", mtu=9000, vlan=60)
    [f] = found(dc, "MTU")
    assert (f.severity, f.path) == ("warning", "hosts/esx01/vmknics/vmk2")
    assert "vmnic2" in f.message
    h.nics["vmnic2"].mtu = 9000
    assert found(dc, "MTU") == []


def test_dup_addr_same_ip_on_two_hosts() -> None:
    dc = clean_lab(2)
    dc.hosts["esx02"].vmknics["vmk1"].ipv4.address = IPv4Interface("198.18.4.11/24")
    got = found(dc, "DUP-ADDR")
    assert sorted(f.path for f in got) == ["hosts/esx01/vmknics/vmk1",
                                           "hosts/esx02/vmknics/vmk1"]
    assert all(f.severity == "error" for f in got)
    assert found(clean_lab(3), "DUP-ADDR") == []


def test_overlap_subnets_across_stacks_warns() -> None:
    dc = clean_lab(1)
    dc.hosts["esx01"].vmknics["vmk1"].ipv4.address = IPv4Interface("198.18.0.41/16")
    [f] = found(dc, "OVERLAP")
    assert (f.severity, f.path) == ("warning", "hosts/esx01")
    assert found(clean_lab(1), "OVERLAP") == []


def test_ns3_gateway_outside_the_stack_subnets_is_error() -> None:
    dc = clean_lab(1)
    set_gateway(dc.hosts["esx01"], "vmotion", "198.18.9.1")
    [f] = found(dc, "NS-3")
    assert (f.severity, f.path) == ("error", "hosts/esx01/netstacks/vmotion")
    add_route(dc.hosts["esx01"], "defaultTcpipStack", "198.18.30.0/24", "198.18.31.1")
    assert len(found(dc, "NS-3")) == 2


def test_ns3_gateway_on_link_via_route_or_dhcp_is_fine() -> None:
    dc = clean_lab(1)
    h = dc.hosts["esx01"]
    set_gateway(h, "vmotion", "198.18.4.1")
    set_gateway(h, "defaultTcpipStack", "198.18.9.1")
    add_route(h, "defaultTcpipStack", "198.18.9.0/24", "198.18.0.1")
    assert found(dc, "NS-3") == []
    h.netstacks["vmotion"].gateway = IPv4Address("198.18.5.1")
    h.vmknics["vmk1"].ipv4.type = "dhcp"
    assert found(dc, "NS-3") == []


def test_sto2_nfs3_with_two_servers_and_mixed_versions() -> None:
    dc = clean_lab(2)
    add_nfs(dc.hosts["esx01"], "ds1", "/vol/a", ["198.18.20.1", "198.18.20.2"])
    [f] = found(dc, "STO-2")
    assert (f.severity, f.path) == ("error", "hosts/esx01/storage/nfs/ds1")
    dc = clean_lab(2)
    add_nfs(dc.hosts["esx01"], "ds1", "/vol/a", ["198.18.20.1"], "3")
    add_nfs(dc.hosts["esx02"], "ds1", "/vol/a", ["198.18.20.1", "198.18.20.2"], "4.1")
    assert sorted(f.path for f in found(dc, "STO-2")) == [
        "hosts/esx01/storage/nfs/ds1", "hosts/esx02/storage/nfs/ds1"]


def test_sto2_consistent_mounts_are_fine() -> None:
    dc = clean_lab(2)
    for i in (1, 2):
        add_nfs(dc.hosts[host_name(i)], "ds1", "/vol/a", ["198.18.20.1", "198.18.20.2"], "4.1")
        add_nfs(dc.hosts[host_name(i)], "ds2", "/vol/b", ["198.18.20.1"], "3")
    assert found(dc, "STO-2") == []


def test_lint_does_not_repeat_refusals() -> None:
    # EX-3 and SVC-4 states are refused by rules.checks; lint stays silent about them.
    dc = clean_lab(2)
    dc.hosts["esx01"].vmknics["vmk0"].services = [S.MANAGEMENT]
    add_vmk(dc.hosts["esx01"], "vmk9", "app", "custom1", "198.18.22.11/24", ["VMotion"],
            vlan=80)
    refusals = {"EX-3", "EX-4", "SVC-4", "SVC-5", "SW-2", "REQ-5", "NS-1", "NS-5"}
    assert not {f.rule for f in lint(dc)} & refusals


# --- properties and speed -----------------------------------------------------------------

RULES = {rule for rule, _ in CHECKS}
VmkSpec = tuple[str, int, int, list[Service], int]

vmk_spec = st.tuples(
    st.sampled_from(["defaultTcpipStack", "vmotion", "vSphereProvisioning", "custom1"]),
    st.integers(0, 3),  # subnet 198.18.(4+n).0/24
    st.sampled_from([0, 10, 20, 4095]),
    st.lists(st.sampled_from([S.MANAGEMENT, S.VMOTION, S.VSAN, S.FT_LOGGING]), max_size=2,
             unique=True),
    st.sampled_from([1500, 9000]),
)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.lists(vmk_spec, max_size=4), min_size=1, max_size=4),
       st.booleans(), st.booleans())
def test_lint_never_raises_and_is_sorted(hosts: list[list[VmkSpec]], vsan: bool,
                                         ft: bool) -> None:
    dc = Datacenter(hosts={host_name(i): clean_host(i) for i in range(1, len(hosts) + 1)})
    for i, vmks in enumerate(hosts, 1):
        h = dc.hosts[host_name(i)]
        h.vswitches["vSwitch0"].mtu = 9000
        for k, (stack, net, vlan, services, mtu) in enumerate(vmks, 2):
            add_vmk(h, f"vmk{k}", f"pg{k}", stack, f"198.18.{4 + net}.{10 * k + i}/24",
                    [] if stack == "custom1" else services, vlan=vlan, mtu=mtu)
    add_cluster(dc, "cl01", ha=True, vsan=vsan, ft=ft)
    result = lint(dc)
    assert result == sorted(result, key=lambda f: (f.path, f.rule, f.message))
    assert {f.rule for f in result} <= RULES
    assert all(f.severity in ("error", "warning", "info") and f.hint for f in result)


def test_lint_of_a_1000_host_datacenter() -> None:
    # the time is measured in bench/bench_core.py, not asserted here
    result = lint(big_datacenter(1000, cluster_size=32))
    assert {f.rule for f in result} == {"SW-7"}  # new_host has one management uplink
