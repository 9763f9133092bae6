"""The shipped examples behave as their comments and the README say."""

from __future__ import annotations

import re
from ipaddress import ip_address, ip_network
from itertools import permutations
from pathlib import Path

import pytest

from vmknet.inventory import Inventory
from vmknet.model import Datacenter, Service
from vmknet.resolve import resolve
from vmknet.rules.lint import lint
from vmknet.state import load_file

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
ALLOWED = (ip_network("198.18.0.0/15"), ip_network("2001:db8::/32"))
IPV4 = r"\d{1,3}(?:\.\d{1,3}){3}"
IPV6 = r"[0-9a-fA-F]{1,4}(?::[0-9a-fA-F]{0,4}){2,7}"
ADDRESS = re.compile(rf"(?<![\w.:])({IPV4}|{IPV6})(?:/\d+)?(?![\w.:])")


def load(name: str) -> Datacenter:
    return load_file(EXAMPLES / name)


@pytest.fixture(scope="module")
def datacenter() -> Datacenter:
    return load("datacenter.yaml")


def test_datacenter_validates_and_lints_clean(datacenter: Datacenter) -> None:
    assert Inventory.validate(datacenter) == []
    assert lint(datacenter) == []


def test_datacenter_is_the_described_cluster(datacenter: Datacenter) -> None:
    cl01 = datacenter.clusters["cl01"]
    assert (cl01.ha, cl01.vsan, cl01.ft) == (True, True, True)
    assert cl01.hosts == ["esx01", "esx02", "esx03"]
    dvs = datacenter.distributed_switches["dvs01"]
    assert dvs.mtu == 9000
    for name, host in datacenter.hosts.items():
        assert host.vswitches["vSwitch0"].uplinks == ["vmnic0", "vmnic1"], name
        vs1 = host.vswitches["vSwitch1"]
        assert (vs1.mtu, vs1.uplinks) == (9000, ["vmnic2", "vmnic3"])
        a, b = vs1.portgroups["vMotion-A"], vs1.portgroups["vMotion-B"]
        assert a.vlan == b.vlan and a.teaming and b.teaming
        assert (a.teaming.active, a.teaming.standby) == (["vmnic2"], ["vmnic3"])  # SW-6
        assert (b.teaming.active, b.teaming.standby) == (["vmnic3"], ["vmnic2"])
        assert host.vmknics_on("vmotion") == ["vmk1", "vmk2"]
        assert all(host.vmknics[v].mtu == 9000 for v in ("vmk1", "vmk2", "vmk4", "vmk5"))
        assert host.vmknics_on("vSphereProvisioning") == ["vmk3"]
        assert host.vmknics_with(Service.VSAN) == ["vmk4"]
        assert host.vmknics_with(Service.FT_LOGGING) == ["vmk5"]
        assert host.netstacks["defaultTcpipStack"].dns_servers
        assert name in dvs.hosts


def test_datacenter_every_adapter_has_its_own_distributed_portgroup(
        datacenter: Datacenter) -> None:
    for host in datacenter.hosts.values():
        dvpgs = [v.dvportgroup for v in host.vmknics.values() if v.dvs]
        assert len(dvpgs) == len(set(dvpgs)) == 3


def test_datacenter_vmotion_is_striped_on_link(datacenter: Datacenter) -> None:
    for src, dst in permutations(datacenter.hosts, 2):
        flows = resolve(datacenter, Service.VMOTION, src, dst)
        assert [(f.source.vmknic, f.target.vmknic) for f in flows] == [
            ("vmk1", "vmk1"), ("vmk2", "vmk2")]
        assert all(f.source.netstack == "vmotion" and f.next_hop is None for f in flows)


def test_ex3_refused_names_the_vmotion_stack_adapter() -> None:
    errors = Inventory.validate(load("ex3-refused.yaml"))
    assert [e.code for e in errors] == ["EX-3"]
    assert errors[0].message == (
        "Cannot enable VMotion on vmk0: host esx01 uses the vmotion stack (vmk1)")
    assert errors[0].details["path"] == "hosts/esx01/vmknics/vmk0"


def test_warnings_example_lints_with_the_named_findings() -> None:
    dc = load("warnings.yaml")
    assert Inventory.validate(dc) == []
    found = {(f.rule, f.path): f.severity for f in lint(dc)}
    assert found[("SVC-6", "hosts/esx11/vmknics/vmk0")] == "warning"
    assert found[("SW-7", "hosts/esx11/vmknics/vmk0")] == "warning"
    assert ("REQ-3", "hosts/esx12") in found
    assert {rule for rule, _ in found} <= {"SVC-6", "SW-7", "REQ-3", "SEC-1"}


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.yaml")), ids=lambda p: p.name)
def test_examples_use_only_lab_addresses(path: Path) -> None:
    addresses = ADDRESS.findall(path.read_text())
    assert addresses
    for text in addresses:
        assert any(ip_address(text) in net for net in ALLOWED), text
