"""Every refusal rule enforced at operation time, accepted and refused (SPEC ids in test names)."""

from __future__ import annotations

from functools import partial
from ipaddress import IPv4Address, IPv4Interface
from typing import Any

import pytest

from vmknet.errors import AlreadyExists, NotFound, ResourceInUse, RuleViolation, VmknetError
from vmknet.events import Event
from vmknet.model import (
    DEFAULT_STACK,
    Datacenter,
    FcoeAdapter,
    Service,
)
from vmknet.ops import dvs as D
from vmknet.ops import execute
from vmknet.ops import host as H
from vmknet.ops import interface as I
from vmknet.ops import netstack as N
from vmknet.ops import nic as P
from vmknet.ops import storage as S
from vmknet.ops import vswitch as V
from vmknet.rules.checks import check

A = IPv4Address


def run(dc: Datacenter, op: Any, **kw: Any) -> tuple[Datacenter, list[Event]]:
    return execute(dc, partial(op, **kw))


def refused(dc: Datacenter, code: str, op: Any, **kw: Any) -> VmknetError:
    with pytest.raises(VmknetError) as info:
        execute(dc, partial(op, **kw))
    assert info.value.code == code, info.value.message
    return info.value


@pytest.fixture
def dc() -> Datacenter:
    """esx01 as installed (SW-1), vmk0 at 198.18.0.11/24, plus vSwitch1 (MTU 9000, vmnic2/3)."""
    d, _ = run(Datacenter(), H.host_add, name="esx01",
               management_ip=IPv4Interface("198.18.0.11/24"))
    d, _ = run(d, V.add, host="esx01", name="vSwitch1", mtu=9000)
    for nic in ("vmnic2", "vmnic3"):
        d, _ = run(d, V.uplink_add, host="esx01", vswitch="vSwitch1", uplink=nic)
    for pg in ("vMotion-A", "Prov", "Storage", "Custom"):
        d, _ = run(d, V.portgroup_add, host="esx01", vswitch="vSwitch1", name=pg)
    return d


def with_vmk(dc: Datacenter, name: str, pg: str, stack: str | None = None,
             ip: str | None = None) -> Datacenter:
    d, _ = run(dc, I.add, host="esx01", name=name, portgroup=pg, netstack=stack)
    if ip:
        d, _ = run(d, I.ipv4_set, host="esx01", name=name, type="static",
                   address=A(ip), netmask=A("255.255.255.0"))
    return d


def test_sw1_new_host_is_an_installed_esxi() -> None:
    d, _ = run(Datacenter(), H.host_add, name="esx01")
    h = d.hosts["esx01"]
    assert list(h.nics) == ["vmnic0", "vmnic1", "vmnic2", "vmnic3"]
    assert all(n.speed == 10000 and n.link_up for n in h.nics.values())
    assert h.vswitches["vSwitch0"].uplinks == ["vmnic0"]
    assert "Management Network" in h.vswitches["vSwitch0"].portgroups
    assert h.vmknics["vmk0"].netstack == DEFAULT_STACK
    assert h.vmknics["vmk0"].services == [Service.MANAGEMENT]
    assert list(h.netstacks) == [DEFAULT_STACK]
    assert check(d) == []


def test_host_add_twice_is_already_exists(dc: Datacenter) -> None:
    refused(dc, "AlreadyExists", H.host_add, name="esx01")


# --- NS: stacks ---------------------------------------------------------------------------

def test_ns1_custom_stack_names(dc: Datacenter) -> None:
    d, _ = run(dc, N.add, host="esx01", name="backup_net-1")
    assert "backup_net-1" in d.hosts["esx01"].netstacks
    refused(dc, "NS-1", N.add, host="esx01", name="bad name!")
    refused(dc, "NS-1", N.add, host="esx01", name="x" * 33)


def test_ns1_netstack_add_twice(dc: Datacenter) -> None:
    d, _ = run(dc, N.add, host="esx01", name="vmotion")
    err = refused(d, "AlreadyExists", N.add, host="esx01", name="vmotion")
    assert err.message == "Netstack instance 'vmotion' is already found"


def test_ns3_gateway_must_be_in_an_adapter_subnet(dc: Datacenter) -> None:
    d, _ = run(dc, N.route_add, host="esx01", network="default", gateway=A("198.18.0.1"))
    assert d.hosts["esx01"].netstacks[DEFAULT_STACK].gateway == A("198.18.0.1")
    refused(dc, "NS-3", N.route_add, host="esx01", network="default", gateway=A("198.19.0.1"))
    # a static route's next hop makes a gateway reachable too
    d, _ = run(d, N.route_add, host="esx01", network="198.19.0.0/24", gateway=A("198.18.0.254"))
    d, _ = run(d, N.route_add, host="esx01", network="198.19.1.0/24", gateway=A("198.19.0.1"))


def test_ns3_gateway_override_inside_subnet(dc: Datacenter) -> None:
    d = with_vmk(dc, "vmk1", "vMotion-A", "vmotion", "198.18.4.11")
    refused(d, "NS-3", I.ipv4_set, host="esx01", name="vmk1", type="static",
            address=A("198.18.4.11"), netmask=A("255.255.255.0"), gateway=A("198.18.5.1"))


def test_ns4_stack_is_fixed_at_creation(dc: Datacenter) -> None:
    d = with_vmk(dc, "vmk1", "vMotion-A", "vmotion", "198.18.4.11")
    d, _ = run(d, I.set_, host="esx01", name="vmk1", mtu=9000)
    assert d.hosts["esx01"].vmknics["vmk1"].netstack == "vmotion"
    # the only way to change it: remove and re-create
    d, _ = run(d, I.remove, host="esx01", name="vmk1")
    d = with_vmk(d, "vmk1", "vMotion-A", DEFAULT_STACK)
    assert d.hosts["esx01"].vmknics["vmk1"].netstack == DEFAULT_STACK


def test_ns5_default_stack_and_busy_stacks_cannot_be_removed(dc: Datacenter) -> None:
    refused(dc, "NS-5", N.remove, host="esx01", name=DEFAULT_STACK)
    d = with_vmk(dc, "vmk1", "vMotion-A", "vmotion")
    refused(d, "NS-5", N.remove, host="esx01", name="vmotion")
    d, _ = run(d, I.remove, host="esx01", name="vmk1")
    d, _ = run(d, N.remove, host="esx01", name="vmotion")
    assert "vmotion" not in d.hosts["esx01"].netstacks


def test_ns6_defaults_and_pending_max_connections(dc: Datacenter) -> None:
    d, _ = run(dc, N.add, host="esx01", name="custom1")
    stack = d.hosts["esx01"].netstacks["custom1"]
    assert (stack.congestion_control, stack.max_connections, stack.ipv6_enabled) == (
        "newreno", 11000, True)
    d, events = run(d, N.set_, host="esx01", name="custom1", max_connections=20000,
                    congestion_control="cubic")
    assert [e.rule for e in events] == ["NS-6"] and "pending" in events[0].message


def test_ns7_builtin_stacks_appear_on_demand_custom_do_not(dc: Datacenter) -> None:
    d, events = run(dc, I.add, host="esx01", name="vmk1", portgroup="Prov",
                    netstack="vSphereProvisioning")
    assert "vSphereProvisioning" in d.hosts["esx01"].netstacks
    assert events[0].rule == "NS-7"
    refused(dc, "NotFound", I.add, host="esx01", name="vmk1", portgroup="Custom",
            netstack="custom1")


# --- SVC: services -----------------------------------------------------------------------

def test_svc1_services_on_default_stack(dc: Datacenter) -> None:
    d = with_vmk(dc, "vmk1", "Storage")
    for svc in (Service.VMOTION, Service.VSAN, Service.FT_LOGGING, Service.REPLICATION):
        d, _ = run(d, I.tag_add, host="esx01", name="vmk1", service=svc)
    assert len(d.hosts["esx01"].vmknics["vmk1"].services) == 4


def test_tag_twice_is_refused_with_esxi_message(dc: Datacenter) -> None:
    d = with_vmk(dc, "vmk1", "Storage")
    d, _ = run(d, I.tag_add, host="esx01", name="vmk1", service=Service.VMOTION)
    err = refused(d, "AlreadyExists", I.tag_add, host="esx01", name="vmk1",
                  service=Service.VMOTION)
    assert err.message == "Vmknic vmk1 is already tagged with VMotion"


@pytest.mark.parametrize(("stack", "pg", "rule", "implied"), [
    ("vmotion", "vMotion-A", "SVC-2", Service.VMOTION),
    ("vSphereProvisioning", "Prov", "SVC-3", Service.PROVISIONING),
])
def test_svc2_svc3_exclusive_stack_adapter_carries_only_its_service(
        dc: Datacenter, stack: str, pg: str, rule: str, implied: Service) -> None:
    d = with_vmk(dc, "vmk1", pg, stack)
    assert d.hosts["esx01"].vmknics["vmk1"].services == [implied]
    refused(d, rule, I.tag_add, host="esx01", name="vmk1", service=Service.MANAGEMENT)
    refused(d, rule, I.tag_remove, host="esx01", name="vmk1", service=implied)


def test_svc4_custom_stack_carries_no_tagged_service(dc: Datacenter) -> None:
    d, _ = run(dc, N.add, host="esx01", name="backup")
    d = with_vmk(d, "vmk1", "Custom", "backup")
    refused(d, "SVC-4", I.tag_add, host="esx01", name="vmk1", service=Service.REPLICATION)
    refused(d, "SVC-4", I.tag_add, host="esx01", name="vmk1", service=Service.VSAN)


def test_svc5_one_ft_adapter_per_host(dc: Datacenter) -> None:
    d = with_vmk(with_vmk(dc, "vmk1", "Storage"), "vmk2", "Storage")
    d, _ = run(d, I.tag_add, host="esx01", name="vmk1", service=Service.FT_LOGGING)
    err = refused(d, "SVC-5", I.tag_add, host="esx01", name="vmk2",
                  service=Service.FT_LOGGING)
    assert "vmk1" in err.message


# --- EX: exclusive stacks ---------------------------------------------------------------

def test_ex1_first_vmotion_stack_adapter_takes_vmotion_away(dc: Datacenter) -> None:
    d = with_vmk(dc, "vmk1", "Storage")
    d, _ = run(d, I.tag_add, host="esx01", name="vmk0", service=Service.VMOTION)
    d, _ = run(d, I.tag_add, host="esx01", name="vmk1", service=Service.VMOTION)
    d, events = run(d, I.add, host="esx01", name="vmk2", portgroup="vMotion-A",
                    netstack="vmotion")
    ex1 = [e for e in events if e.rule == "EX-1"]
    assert sorted(e.path for e in ex1) == ["hosts/esx01/vmknics/vmk0",
                                           "hosts/esx01/vmknics/vmk1"]
    h = d.hosts["esx01"]
    assert Service.VMOTION not in h.vmknics["vmk0"].services
    assert h.vmknics["vmk0"].services == [Service.MANAGEMENT]  # other tags stay
    # the decision: nothing gives it back when the vmotion stack loses its adapters
    d, _ = run(d, I.remove, host="esx01", name="vmk2")
    assert Service.VMOTION not in d.hosts["esx01"].vmknics["vmk1"].services


def test_ex1_no_event_without_default_stack_vmotion(dc: Datacenter) -> None:
    _, events = run(dc, I.add, host="esx01", name="vmk2", portgroup="vMotion-A",
                    netstack="vmotion")
    assert not [e for e in events if e.rule == "EX-1"]


def test_ex3_vmotion_on_default_stack_refused_naming_the_stack_adapter(
        dc: Datacenter) -> None:
    d = with_vmk(with_vmk(dc, "vmk3", "vMotion-A", "vmotion"), "vmk1", "Storage")
    err = refused(d, "EX-3", I.tag_add, host="esx01", name="vmk1", service=Service.VMOTION)
    assert err.message == ("Cannot enable VMotion on vmk1: host esx01 uses the vmotion "
                           "stack (vmk3)")


def test_ex4_provisioning_is_exclusive_too(dc: Datacenter) -> None:
    d = with_vmk(dc, "vmk1", "Storage")
    d, _ = run(d, I.tag_add, host="esx01", name="vmk1", service=Service.PROVISIONING)
    d, events = run(d, I.add, host="esx01", name="vmk2", portgroup="Prov",
                    netstack="vSphereProvisioning")
    assert [e.rule for e in events if e.path.endswith("vmk1")] == ["EX-4"]
    assert Service.PROVISIONING not in d.hosts["esx01"].vmknics["vmk1"].services
    err = refused(d, "EX-4", I.tag_add, host="esx01", name="vmk1",
                  service=Service.PROVISIONING)
    assert "(vmk2)" in err.message


# --- SW: switches ----------------------------------------------------------------------

def test_sw2_adapter_mtu_not_above_switch(dc: Datacenter) -> None:
    d = with_vmk(dc, "vmk1", "vMotion-A", "vmotion")
    d, _ = run(d, I.set_, host="esx01", name="vmk1", mtu=9000)
    refused(dc, "SW-2", I.set_, host="esx01", name="vmk0", mtu=9000)
    refused(d, "SW-2", V.set_, host="esx01", name="vSwitch1", mtu=1500)
    refused(d, "InvalidArgument", I.set_, host="esx01", name="vmk1", mtu=9001)


def test_sw2_dvs_mtu_applies_on_every_member(dc: Datacenter) -> None:
    d, _ = run(dc, D.add, name="dvs01", mtu=9000)
    d, _ = run(d, D.host_add, name="dvs01", host="esx01",
               mapping={"Uplink 1": "vmnic1"})
    d, _ = run(d, D.portgroup_add, name="dvs01", portgroup="vSAN-01", vlan=12)
    d, _ = run(d, I.add, host="esx01", name="vmk5", dvs="dvs01", dvportgroup="vSAN-01",
               mtu=9000)
    refused(d, "SW-2", D.set_, name="dvs01", mtu=1500)


def test_uplink_belongs_to_one_switch(dc: Datacenter) -> None:
    refused(dc, "ResourceInUse", V.uplink_add, host="esx01", vswitch="vSwitch0",
            uplink="vmnic2")
    d, _ = run(dc, D.add, name="dvs01")
    refused(d, "ResourceInUse", D.host_add, name="dvs01", host="esx01",
            mapping={"Uplink 1": "vmnic0"})


def test_failover_order_names_switch_uplinks(dc: Datacenter) -> None:
    d, _ = run(dc, V.failover_set, host="esx01", portgroup="vMotion-A", active=["vmnic2"],
               standby=["vmnic3"])
    pg = d.hosts["esx01"].vswitches["vSwitch1"].portgroups["vMotion-A"]
    assert pg.teaming is not None and pg.teaming.active == ["vmnic2"]
    refused(dc, "InvalidArgument", V.failover_set, host="esx01", vswitch="vSwitch1",
            active=["vmnic0"])
    refused(dc, "InvalidArgument", V.failover_set, host="esx01", vswitch="vSwitch1",
            active=["vmnic2"], standby=["vmnic2"])


def test_portgroup_in_use_cannot_be_removed(dc: Datacenter) -> None:
    d = with_vmk(dc, "vmk1", "Storage")
    with pytest.raises(ResourceInUse):
        execute(d, partial(V.portgroup_remove, host="esx01", vswitch="vSwitch1",
                           name="Storage"))


# --- STO: storage --------------------------------------------------------------------------

def bound_dc(dc: Datacenter) -> Datacenter:
    d = with_vmk(dc, "vmk4", "Storage", ip="198.18.20.11")
    d, _ = run(d, S.iscsi_software_set, host="esx01", enabled=True)
    return d


def test_sto1_port_binding_needs_exactly_one_active_uplink(dc: Datacenter) -> None:
    d = bound_dc(dc)
    err = refused(d, "VnicHasMultipleUplinks", S.networkportal_add, host="esx01",
                  adapter="vmhba64", vmk="vmk4")
    assert "STO-1" in err.message
    d, _ = run(d, V.failover_set, host="esx01", portgroup="Storage", active=["vmnic2"],
               standby=[])
    d, _ = run(d, S.networkportal_add, host="esx01", adapter="vmhba64", vmk="vmk4")
    # once bound, the failover order can no longer give it a standby
    refused(d, "VnicHasMultipleUplinks", V.failover_set, host="esx01", portgroup="Storage",
            standby=["vmnic3"])
    refused(d, "ResourceInUse", I.remove, host="esx01", name="vmk4")


def test_sto1_no_uplinks_and_target_subnet(dc: Datacenter) -> None:
    d = bound_dc(dc)
    d, _ = run(d, V.failover_set, host="esx01", portgroup="Storage", active=[], standby=[])
    refused(d, "VnicHasNoUplinks", S.networkportal_add, host="esx01", adapter="vmhba64",
            vmk="vmk4")
    d, _ = run(d, V.failover_set, host="esx01", portgroup="Storage", active=["vmnic3"])
    d, _ = run(d, S.networkportal_add, host="esx01", adapter="vmhba64", vmk="vmk4")
    d, _ = run(d, S.sendtarget_add, host="esx01", adapter="vmhba64",
               address=A("198.18.20.200"))
    refused(d, "STO-1", S.sendtarget_add, host="esx01", adapter="vmhba64",
            address=A("198.18.21.200"))


def test_sto3_fcoe_needs_dedicated_adapter_and_mtu_2500(dc: Datacenter) -> None:
    d = with_vmk(dc, "vmk6", "Custom")

    def add_fcoe(x: Datacenter) -> list[Event]:
        x.hosts["esx01"].storage.fcoe.append(FcoeAdapter(vmknic="vmk6", vmnic="vmnic3"))
        return []

    d2, _ = execute(d, add_fcoe)
    assert check(d2) == []
    d3, _ = run(d, I.tag_add, host="esx01", name="vmk6", service=Service.VSAN)
    with pytest.raises(RuleViolation) as info:
        execute(d3, add_fcoe)
    assert info.value.code == "STO-3"
    d4, _ = run(d, V.set_, host="esx01", name="vSwitch1", mtu=2000)
    with pytest.raises(RuleViolation) as info:
        execute(d4, add_fcoe)
    assert "2500" in info.value.message


# --- REQ-5 ---------------------------------------------------------------------------------

def test_req5_last_management_adapter_stays(dc: Datacenter) -> None:
    refused(dc, "REQ-5", I.remove, host="esx01", name="vmk0")
    refused(dc, "REQ-5", I.tag_remove, host="esx01", name="vmk0", service=Service.MANAGEMENT)
    refused(dc, "REQ-5", I.set_, host="esx01", name="vmk0", enabled=False)
    d = with_vmk(dc, "vmk1", "Storage")
    d, _ = run(d, I.tag_add, host="esx01", name="vmk1", service=Service.MANAGEMENT)
    d, _ = run(d, I.remove, host="esx01", name="vmk0")
    assert "vmk0" not in d.hosts["esx01"].vmknics


# --- references and all-or-nothing ----------------------------------------------------------

def test_references_are_checked(dc: Datacenter) -> None:
    refused(dc, "NotFound", I.add, host="esx01", name="vmk1", portgroup="nope")
    refused(dc, "NotFound", I.tag_add, host="esx01", name="vmk9", service=Service.VSAN)
    refused(dc, "NotFound", I.add, host="esx09", name="vmk1", portgroup="Storage")
    refused(dc, "InvalidArgument", I.add, host="esx01", name="eth0", portgroup="Storage")
    refused(dc, "NotFound", P.set_link, host="esx01", name="vmnic9", up=False)
    refused(dc, "NotFound", I.add, host="esx01", name="vmk1", dvs="dvs9", dvportgroup="x")
    with pytest.raises(AlreadyExists):
        execute(dc, partial(I.add, host="esx01", name="vmk0", portgroup="Storage"))
    with pytest.raises(NotFound):
        execute(dc, partial(N.route_remove, host="esx01", network="default", gateway=None))


def test_refused_operation_changes_nothing(dc: Datacenter) -> None:
    before = dc.model_dump()
    with pytest.raises(RuleViolation):
        execute(dc, partial(I.remove, host="esx01", name="vmk0"))
    assert dc.model_dump() == before


def test_nic_link_and_speed(dc: Datacenter) -> None:
    d, _ = run(dc, P.set_link, host="esx01", name="vmnic1", up=False)
    d, _ = run(d, P.set_, host="esx01", name="vmnic1", speed=1000)
    assert d.hosts["esx01"].nics["vmnic1"].link == "down"
    assert d.hosts["esx01"].nics["vmnic1"].speed == 1000


def test_clusters(dc: Datacenter) -> None:
    d, _ = run(dc, H.cluster_add, name="cl01", ha=True, vsan=True)
    d, _ = run(d, H.cluster_host_add, name="cl01", host="esx01")
    refused(d, "AlreadyExists", H.cluster_host_add, name="cl01", host="esx01")
    d, _ = run(d, H.host_remove, name="esx01")
    assert d.clusters["cl01"].hosts == []


def test_ns7_a_file_need_not_declare_builtin_stacks() -> None:
    from vmknet.state import dumps, loads

    dc = loads("hosts:\n  esx01:\n    vmknics:\n"
               "      vmk0: {portgroup: Management Network, services: [management]}\n"
               "      vmk1: {portgroup: Management Network, netstack: vmotion}\n"
               "    vswitches: {vSwitch0: {uplinks: [vmnic0],"
               " portgroups: {Management Network: {}}}}\n")
    assert "vmotion" in dc.hosts["esx01"].netstacks
    assert check(dc) == []
    assert loads(dumps(dc)) == dc
    custom = dc.model_dump(by_alias=True)
    custom["hosts"]["esx01"]["vmknics"]["vmk1"].update(netstack="backup", services=[])
    assert [e.code for e in check(Datacenter.model_validate(custom))] == ["NotFound"]
