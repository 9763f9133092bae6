"""ADDR-1 (a static address is a unicast host address of its subnet) and ADDR-2 (unique on
one layer-2 network), from files, operations and esxcli alike."""

from __future__ import annotations

from functools import partial
from ipaddress import IPv4Interface, IPv4Network
from pathlib import Path

import pytest
from builders import add_vmk, add_vswitch, lab
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from vmknet.cli.context import AppContext
from vmknet.cli.esxcli import esxcli
from vmknet.inventory import Inventory
from vmknet.ops import host as host_ops
from vmknet.rules.addresses import unusable
from vmknet.rules.checks import check
from vmknet.state import load_file

EXAMPLES = sorted(Path(__file__).parents[2].joinpath("examples").glob("*.yaml"))

REFUSED = ["0.0.0.0/24", "0.0.48.57/8", "127.0.0.1/8", "224.0.0.5/24", "239.1.1.1/24",
           "169.254.7.7/16",
           "198.18.4.0/24", "198.18.4.255/24", "198.18.0.0/15", "198.19.255.255/15",
           "255.255.255.255/24", "240.0.0.1/24",
           "::/64", "::1/128", "ff02::1/64", "fe80::1/64", "2001:db8:4::/64"]
ACCEPTED = ["198.18.4.11/24", "198.18.4.1/24", "198.18.4.254/24", "198.18.4.0/31",
            "198.18.4.1/31", "198.18.4.7/32", "2001:db8:4::11/64", "2001:db8:4::/127"]


def codes(dc: object) -> set[str]:
    return {e.code for e in check(dc)}  # type: ignore[arg-type]


@pytest.mark.parametrize("address", REFUSED)
def test_addr1_refuses(address: str) -> None:
    dc = lab(2)
    add_vmk(dc.hosts["esx01"], "vmk1", "vMotion", "vmotion", address, vlan=40)
    errors = [e for e in check(dc) if e.code == "ADDR-1"]
    assert len(errors) == 1 and address.split("/")[0] in errors[0].message
    assert errors[0].details["path"] == "hosts/esx01/vmknics/vmk1"


@pytest.mark.parametrize("address", ACCEPTED)
def test_addr1_accepts(address: str) -> None:
    dc = lab(2)
    add_vmk(dc.hosts["esx01"], "vmk1", "vMotion", "vmotion", address, vlan=40)
    assert "ADDR-1" not in codes(dc)


@settings(max_examples=300, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(8, 30))
def test_addr1_network_and_broadcast_of_any_subnet(value: int, prefix: int) -> None:
    iface = IPv4Interface((value, prefix))
    net = IPv4Network((value, prefix), strict=False)
    ip = iface.ip
    special = (ip.is_unspecified or ip.is_loopback or ip.is_multicast or ip.is_link_local
               or ip.is_reserved or ip in IPv4Network("0.0.0.0/8"))
    edge = ip in (net.network_address, net.broadcast_address)
    assert (unusable(iface) is not None) == (special or edge)


def test_addr2_same_vlan_is_refused_other_vlan_or_isolated_switch_is_legal() -> None:
    dc = lab(2)
    add_vmk(dc.hosts["esx01"], "vmk1", "vMotion-A", "vmotion", "198.18.4.11/24", vlan=40)
    add_vmk(dc.hosts["esx02"], "vmk1", "vMotion-A", "vmotion", "198.18.4.11/24", vlan=40)
    errors = [e for e in check(dc) if e.code == "ADDR-2"]
    assert len(errors) == 1 and "esx01 vmk1" in errors[0].message + errors[0].details["path"]
    dc.hosts["esx02"].vswitches["vSwitch0"].portgroups["vMotion-A"].vlan = 41
    assert "ADDR-2" not in codes(dc)
    dc.hosts["esx02"].vswitches["vSwitch0"].portgroups["vMotion-A"].vlan = 4095  # trunk
    assert "ADDR-2" in codes(dc)


def test_addr2_uplinkless_switches_of_two_hosts_are_separate_networks() -> None:
    dc = lab(2)
    for host in ("esx01", "esx02"):
        add_vswitch(dc.hosts[host], "vSwitchInternal")
        add_vmk(dc.hosts[host], "vmk1", "internal", ip="198.18.9.1/24",
                vswitch="vSwitchInternal")
    assert "ADDR-2" not in codes(dc)
    add_vmk(dc.hosts["esx01"], "vmk2", "internal", ip="198.18.9.1/24")
    assert "ADDR-2" in codes(dc)


def test_addr2_only_reports_the_touched_hosts() -> None:
    dc = lab(3)
    add_vmk(dc.hosts["esx01"], "vmk1", "x", ip="198.18.4.11/24")
    add_vmk(dc.hosts["esx02"], "vmk1", "x", ip="198.18.4.11/24")
    assert [e.code for e in check(dc, ["esx03"])] == []
    assert [e.code for e in check(dc, ["esx02"])] == ["ADDR-2"]


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_examples_break_no_address_rule(path: Path) -> None:
    assert not {"ADDR-1", "ADDR-2"} & codes(load_file(path))


@pytest.fixture
def store(tmp_path: Path) -> Path:
    path = tmp_path / "inv.db"
    inv = Inventory.open(path)
    inv.run(partial(host_ops.host_add, name="esx01",
                    management_ip=IPv4Interface("198.18.0.11/24")))
    inv.run(partial(host_ops.host_add, name="esx02"))
    return path


TEXT = {"ADDR-1": "static address", "ADDR-2": "is already used by esx01 vmk0"}


@pytest.mark.parametrize(("words", "rule"), [
    (["interface", "ipv4", "set", "-i", "vmk0", "-t", "static", "-I", "0.0.0.0",
      "-N", "255.255.255.0"], "ADDR-1"),
    (["interface", "ipv4", "set", "-i", "vmk0", "-t", "static", "-I", "198.18.0.255",
      "-N", "255.255.255.0"], "ADDR-1"),
    (["interface", "ipv4", "set", "-i", "vmk0", "-t", "static", "-I", "198.18.0.11",
      "-N", "255.255.255.0"], "ADDR-2"),
    (["interface", "ipv6", "address", "add", "-i", "vmk0", "-I", "ff02::1/64"], "ADDR-1"),
    (["interface", "ipv6", "address", "add", "-i", "vmk0", "-I", "::1/128"], "ADDR-1"),
])
def test_esxcli_refuses_with_one_line_and_changes_nothing(store: Path, words: list[str],
                                                          rule: str) -> None:
    before = store.read_bytes()
    result = CliRunner().invoke(esxcli, ["-H", "esx02", "network", "ip", *words],
                                obj=AppContext(store_path=store))
    assert result.exit_code == 1, result.output
    assert len(result.stderr.strip().splitlines()) == 1
    assert store.read_bytes() == before
    assert TEXT[rule] in result.stderr and "esx02 vmk0" in result.stderr
