"""`vmknet esxcli -H HOST ...`: ESXi's options, columns, errors and all-or-nothing refusals.

Addresses come from 198.18.0.0/15 and 2001:db8::/32 only.
"""

from __future__ import annotations

import json
import re
from functools import partial
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from vmknet.cli.context import AppContext
from vmknet.cli.esxcli import esxcli
from vmknet.cli.esxcli.formatting import esxi_blocks, esxi_table
from vmknet.inventory import Inventory
from vmknet.model import Service
from vmknet.ops import dvs as dvs_ops
from vmknet.ops import host as host_ops


@pytest.fixture
def store(tmp_path: Path) -> Path:
    path = tmp_path / "inv.db"
    Inventory.open(path).run(partial(host_ops.host_add, name="esx01"))
    return path


def esx(store: Path, *words: str, host: str = "esx01") -> Result:
    return CliRunner().invoke(esxcli, ["-H", host, *words], obj=AppContext(store_path=store))


def ok(store: Path, *words: str) -> str:
    result = esx(store, *words)
    assert result.exit_code == 0, (words, result.output, result.stderr)
    return result.stdout


def refused(store: Path, *words: str, exit_code: int | None = None) -> str:
    before = store.read_bytes()
    result = esx(store, *words)
    assert result.exit_code != 0, (words, result.stdout)
    if exit_code is not None:
        assert result.exit_code == exit_code, result.stderr
    assert store.read_bytes() == before, "a refused command changed the store"
    assert result.stdout == ""
    return result.stderr.strip()


def as_json(store: Path, *words: str) -> list[dict[str, object]]:
    data = json.loads(ok(store, *words, "--json"))
    assert isinstance(data, list)
    assert all(isinstance(row, dict) for row in data)
    return data


VMOTION_SWITCH = [
    ("network", "vswitch", "standard", "add", "-v", "vSwitch1", "-m", "9000"),
    ("network", "vswitch", "standard", "uplink", "add", "-u", "vmnic1", "-v", "vSwitch1"),
    ("network", "vswitch", "standard", "uplink", "add", "-u", "vmnic2", "-v", "vSwitch1"),
    ("network", "vswitch", "standard", "portgroup", "add", "-p", "vMotion-A", "-v", "vSwitch1"),
    ("network", "vswitch", "standard", "portgroup", "add", "-p", "Storage", "-v", "vSwitch1"),
]


def with_switch(store: Path) -> Path:
    for words in VMOTION_SWITCH:
        ok(store, *words)
    return store


def tags(store: Path, vmk: str) -> str:
    return ok(store, "network", "ip", "interface", "tag", "get", "-i", vmk)


# -- formatters ---------------------------------------------------------------------------


def test_esxi_table_right_aligns_numbers_and_booleans_under_left_headers() -> None:
    text = esxi_table(["Name", "VLAN ID", "Up"], [{"Name": "Management Network", "VLAN ID": 0,
                                                   "Up": True}, {"Name": "VM", "VLAN ID": 4095,
                                                                 "Up": False}])
    assert text.splitlines() == [
        "Name                VLAN ID  Up",
        "------------------  -------  -----",
        "Management Network        0   true",
        "VM                     4095  false",
    ]


def test_esxi_blocks_title_and_indented_fields() -> None:
    text = esxi_blocks([{"Name": "a", "Uplinks": ["vmnic0", "vmnic1"]}, {"Name": "b",
                                                                         "Uplinks": []}],
                       lambda row: str(row["Name"]))
    assert text == "a\n   Name: a\n   Uplinks: vmnic0, vmnic1\n\nb\n   Name: b\n   Uplinks:"


# -- network ip interface -----------------------------------------------------------------


def test_interface_list_blocks_as_esxi_prints_them(store: Path) -> None:
    out = ok(store, "network", "ip", "interface", "list")
    lines = out.splitlines()
    assert lines[0] == "vmk0"
    assert lines[1] == "   Name: vmk0"
    assert lines[2].startswith("   MAC Address: 00:50:56:")
    for line in ("   Enabled: true", "   Portset: vSwitch0", "   Portgroup: Management Network",
                 "   Netstack Instance: defaultTcpipStack", "   VDS Name: N/A",
                 "   MTU: 1500", "   Port ID: 33554436"):
        assert line in lines
    assert out == ok(store, "network", "ip", "interface", "list"), "derived values are stable"
    rows = as_json(store, "network", "ip", "interface", "list")
    assert rows[0]["Name"] == "vmk0" and rows[0]["MTU"] == 1500 and rows[0]["Enabled"] is True


def test_interface_add_on_vmotion_stack_notes_ex1_and_removes_vmotion_from_vmk0(
        store: Path) -> None:
    with_switch(store)
    ok(store, "network", "ip", "interface", "tag", "add", "-i", "vmk0", "-t", "VMotion")
    assert tags(store, "vmk0") == "   Tags: Management, VMotion\n"
    result = esx(store, "network", "ip", "interface", "add", "-i", "vmk1", "-p", "vMotion-A",
                 "-N", "vmotion", "-m", "9000")
    assert result.exit_code == 0, result.stderr
    assert "EX-1: VMotion disabled on vmk0" in result.stderr
    assert tags(store, "vmk0") == "   Tags: Management\n"
    assert tags(store, "vmk1") == "   Tags: VMotion\n"
    block = ok(store, "network", "ip", "interface", "list", "-N", "vmotion")
    assert "   Netstack Instance: vmotion" in block and "   MTU: 9000" in block
    assert "vmk0" not in block


def test_ex3_refuses_vmotion_tag_on_default_stack_and_leaves_store(store: Path) -> None:
    with_switch(store)
    ok(store, "network", "ip", "interface", "add", "-i", "vmk1", "-p", "vMotion-A",
       "--netstack", "vmotion")
    err = refused(store, "network", "ip", "interface", "tag", "add", "-i", "vmk0",
                  "-t", "vmotion")
    assert err == "Cannot enable VMotion on vmk0: host esx01 uses the vmotion stack (vmk1)"


def test_tag_already_tagged_and_case_insensitive_names(store: Path) -> None:
    with_switch(store)
    ok(store, "network", "ip", "interface", "add", "-i", "vmk1", "-p", "Storage")
    ok(store, "network", "ip", "interface", "tag", "add", "-i", "vmk1", "-t", "vmotion")
    err = refused(store, "network", "ip", "interface", "tag", "add", "-i", "vmk1",
                  "--tagname", "VMOTION")
    assert err == "Vmknic is already tagged with VMotion"  # ESXi's words (docs/cli.md)
    for name in ("faultToleranceLogging", "vsan", "VSANWitness"):
        ok(store, "network", "ip", "interface", "tag", "add", "-i", "vmk1", "-t", name)
    assert tags(store, "vmk1") == "   Tags: VMotion, faultToleranceLogging, VSAN, VSANWitness\n"
    ok(store, "network", "ip", "interface", "tag", "remove", "-i", "vmk1", "-t", "vsan")
    assert as_json(store, "network", "ip", "interface", "tag", "get", "-i", "vmk1") == [
        {"Tags": ["VMotion", "faultToleranceLogging", "VSANWitness"]}]
    assert "unknown service" in esx(store, "network", "ip", "interface", "tag", "add", "-i",
                                    "vmk1", "-t", "bogus").stderr


def test_interface_set_remove_and_mtu_range(store: Path) -> None:
    with_switch(store)
    ok(store, "network", "ip", "interface", "add", "-i", "vmk1", "-p", "Storage",
       "-M", "00:50:56:AA:BB:CC")
    ok(store, "network", "ip", "interface", "set", "-i", "vmk1", "-e", "no", "-m", "9000")
    row = as_json(store, "network", "ip", "interface", "list")[1]
    assert (row["Enabled"], row["MTU"], row["MAC Address"]) == (False, 9000, "00:50:56:aa:bb:cc")
    result = esx(store, "network", "ip", "interface", "set", "-i", "vmk1", "-m", "100")
    assert result.exit_code == 2 and "1280-9000" in result.stderr
    ok(store, "network", "ip", "interface", "remove", "-i", "vmk1")
    assert refused(store, "network", "ip", "interface", "remove", "-i", "vmk1",
                   exit_code=3) == "Vmknic vmk1 not found"
    assert refused(store, "network", "ip", "interface", "add", "-i", "vmk0",
                   "-p", "Storage") == "Vmknic vmk0 already exists on host esx01"


def test_interface_add_on_distributed_port_group(store: Path) -> None:
    inv = Inventory.open(store)
    inv.run(partial(dvs_ops.add, name="dvs-lab"))
    inv.run(partial(dvs_ops.host_add, name="dvs-lab", host="esx01",
                    mapping={"Uplink 1": "vmnic2", "Uplink 2": "vmnic3"}))
    inv.run(partial(dvs_ops.portgroup_add, name="dvs-lab", portgroup="dv-vmotion"))
    ok(store, "network", "ip", "interface", "add", "-i", "vmk2", "--dvs-name", "dvs-lab",
       "--dvport-id", "dv-vmotion", "-N", "vmotion")
    row = as_json(store, "network", "ip", "interface", "list", "-N", "vmotion")[0]
    assert (row["Portset"], row["Portgroup"], row["VDS Name"], row["VDS Port"]) == (
        "DvsPortset-0", "N/A", "dvs-lab", "dv-vmotion")
    result = esx(store, "network", "ip", "interface", "add", "-i", "vmk3", "-s", "dvs-lab")
    assert result.exit_code == 2


# -- ipv4 / ipv6 --------------------------------------------------------------------------


def test_ipv4_set_n_is_the_netmask_and_get_prints_the_esxi_table(store: Path) -> None:
    ok(store, "network", "ip", "interface", "ipv4", "set", "-i", "vmk0", "-t", "static",
       "-I", "198.18.0.11", "-N", "255.255.255.0", "-g", "198.18.0.1")
    lines = ok(store, "network", "ip", "interface", "ipv4", "get").splitlines()
    assert re.split(r"\s{2,}", lines[0]) == [
        "Name", "IPv4 Address", "IPv4 Netmask", "IPv4 Broadcast", "Address Type", "Gateway",
        "DHCP DNS"]
    assert set(lines[1].replace(" ", "")) == {"-"}
    assert lines[2].split() == ["vmk0", "198.18.0.11", "255.255.255.0", "198.18.0.255",
                                "STATIC", "198.18.0.1", "false"]
    assert as_json(store, "network", "ip", "interface", "ipv4", "get", "-i", "vmk0") == [{
        "Name": "vmk0", "IPv4 Address": "198.18.0.11", "IPv4 Netmask": "255.255.255.0",
        "IPv4 Broadcast": "198.18.0.255", "Address Type": "STATIC", "Gateway": "198.18.0.1",
        "DHCP DNS": False}]


def test_ipv4_set_refusals(store: Path) -> None:
    err = refused(store, "network", "ip", "interface", "ipv4", "set", "-i", "vmk0", "-t",
                  "static", "-I", "198.18.0.11", "-N", "255.255.255.0", "-g", "198.18.9.1")
    assert err == "Gateway 198.18.9.1 is not in vmk0's subnet 198.18.0.0/24"
    result = esx(store, "network", "ip", "interface", "ipv4", "set", "-i", "vmk0", "-t",
                 "static", "-I", "2001:db8::1", "-N", "255.255.255.0")
    assert result.exit_code == 2 and "not an IPv4 address" in result.stderr
    assert esx(store, "network", "ip", "interface", "ipv4", "set", "-i", "vmk0",
               "-t", "bogus").exit_code == 2


def test_ipv6_addresses_settings_and_get(store: Path) -> None:
    ok(store, "network", "ip", "interface", "ipv6", "address", "add", "-i", "vmk0",
       "-I", "2001:db8:4::11/64")
    lines = ok(store, "network", "ip", "interface", "ipv6", "address", "list").splitlines()
    assert lines[0].split() == ["Interface", "Address", "Netmask", "Type", "Status"]
    assert lines[2].split() == ["vmk0", "2001:db8:4::11", "64", "STATIC", "PREFERRED"]
    assert refused(store, "network", "ip", "interface", "ipv6", "address", "add", "-i",
                   "vmk0", "-I", "2001:db8:4::11/64") == (
        "Address 2001:db8:4::11/64 already exists on vmk0")
    ok(store, "network", "ip", "interface", "ipv6", "set", "-i", "vmk0", "-d", "1", "-r", "0",
       "-g", "2001:db8:4::1")
    assert as_json(store, "network", "ip", "interface", "ipv6", "get") == [{
        "Name": "vmk0", "IPv6 Enabled": True, "DHCPv6 Enabled": True,
        "Router Adv Enabled": False, "DHCP DNS": False, "Gateway": "2001:db8:4::1"}]
    ok(store, "network", "ip", "interface", "ipv6", "address", "remove", "-i", "vmk0",
       "--ipv6", "2001:db8:4::11/64")
    assert as_json(store, "network", "ip", "interface", "ipv6", "address", "list") == []


# -- netstack, routes, DNS ----------------------------------------------------------------


def test_netstack_add_list_get_set_remove(store: Path) -> None:
    ok(store, "network", "ip", "netstack", "add", "-N", "vmotion")
    assert refused(store, "network", "ip", "netstack", "add", "-N", "vmotion",
                   exit_code=4) == "Netstack instance 'vmotion' is already found in kernel"
    assert ok(store, "network", "ip", "netstack", "list") == (
        "defaultTcpipStack\n   Key: defaultTcpipStack\n   Name: defaultTcpipStack\n"
        "   State: 4660\n\nvmotion\n   Key: vmotion\n   Name: vmotion\n   State: 4660\n")
    result = esx(store, "network", "ip", "netstack", "set", "-N", "vmotion", "-c", "cubic",
                 "--maxconn", "20000", "--ipv6-enabled", "false")
    assert result.exit_code == 0 and result.stderr.startswith("NS-6: ")
    got = as_json(store, "network", "ip", "netstack", "get", "-N", "vmotion")[0]
    assert (got["Congestion Control Algorithm"], got["Max Connections"],
            got["IPv6 Enabled"]) == ("cubic", 20000, False)
    assert "   Congestion Control Algorithm: cubic" in ok(
        store, "network", "ip", "netstack", "get", "-N", "vmotion")
    ok(store, "network", "ip", "netstack", "remove", "-N", "vmotion")
    assert refused(store, "network", "ip", "netstack", "get", "-N", "vmotion",
                   exit_code=3) == "Netstack instance 'vmotion' is not found"
    assert refused(store, "network", "ip", "netstack", "remove", "-N", "defaultTcpipStack") == (
        "Netstack defaultTcpipStack cannot be removed")


def test_routes_ipv4_and_ipv6(store: Path) -> None:
    ok(store, "network", "ip", "interface", "ipv4", "set", "-i", "vmk0", "-t", "static",
       "-I", "198.18.0.11", "-N", "255.255.255.0")
    ok(store, "network", "ip", "route", "ipv4", "add", "-n", "default", "-g", "198.18.0.1")
    ok(store, "network", "ip", "route", "ipv4", "add", "--network", "198.19.0.0/16",
       "--gateway", "198.18.0.254", "-N", "defaultTcpipStack")
    lines = ok(store, "network", "ip", "route", "ipv4", "list").splitlines()
    assert lines[0].split() == ["Network", "Netmask", "Gateway", "Interface", "Source"]
    assert [line.split() for line in lines[2:]] == [
        ["default", "0.0.0.0", "198.18.0.1", "vmk0", "MANUAL"],
        ["198.18.0.0", "255.255.255.0", "0.0.0.0", "vmk0", "MANUAL"],
        ["198.19.0.0", "255.255.0.0", "198.18.0.254", "vmk0", "MANUAL"]]
    assert refused(store, "network", "ip", "route", "ipv4", "add", "-n", "198.19.64.0/18",
                   "-g", "198.18.9.1").startswith("Gateway 198.18.9.1 is not in the subnet")
    ok(store, "network", "ip", "route", "ipv4", "remove", "-n", "198.19.0.0/16",
       "-g", "198.18.0.254")
    assert len(as_json(store, "network", "ip", "route", "ipv4", "list")) == 2
    assert esx(store, "network", "ip", "route", "ipv4", "add", "-n", "2001:db8::/32",
               "-g", "198.18.0.1").exit_code == 2
    ok(store, "network", "ip", "interface", "ipv6", "address", "add", "-i", "vmk0",
       "-I", "2001:db8:4::11/64")
    ok(store, "network", "ip", "route", "ipv6", "add", "-n", "default", "-g", "2001:db8:4::1")
    rows = as_json(store, "network", "ip", "route", "ipv6", "list")
    assert rows[0] == {"Network": "default", "Netmask": 0, "Gateway": "2001:db8:4::1",
                       "Interface": "vmk0", "Source": "MANUAL"}
    ok(store, "network", "ip", "route", "ipv6", "remove", "-n", "default")
    assert refused(store, "network", "ip", "route", "ipv4", "list", "-N", "vmotion") == (
        "Netstack instance 'vmotion' is not found")


def test_dns_servers_and_search_domains(store: Path) -> None:
    ok(store, "network", "ip", "dns", "server", "add", "-s", "198.18.0.53")
    ok(store, "network", "ip", "dns", "server", "add", "--server", "2001:db8::53")
    assert ok(store, "network", "ip", "dns", "server", "list") == (
        "   DNSServers: 198.18.0.53, 2001:db8::53\n")
    assert refused(store, "network", "ip", "dns", "server", "add", "-s", "198.18.0.53") == (
        "DNS server 198.18.0.53 already exists in netstack 'defaultTcpipStack'")
    ok(store, "network", "ip", "dns", "server", "remove", "-s", "198.18.0.53")
    ok(store, "network", "ip", "dns", "search", "add", "-d", "lab.example")
    assert ok(store, "network", "ip", "dns", "search", "list") == (
        "   DNSSearch Domains: lab.example\n")
    assert as_json(store, "network", "ip", "dns", "server", "list") == [
        {"DNSServers": ["2001:db8::53"]}]
    ok(store, "network", "ip", "dns", "search", "remove", "-d", "lab.example")
    assert refused(store, "network", "ip", "dns", "server", "list", "-N", "nope",
                   exit_code=3) == "Netstack instance 'nope' is not found"


# -- vswitch standard ---------------------------------------------------------------------


def test_vswitch_standard_list_and_set(store: Path) -> None:
    with_switch(store)
    out = ok(store, "network", "vswitch", "standard", "list")
    blocks = out.strip().split("\n\n")
    assert blocks[1].splitlines() == [
        "vSwitch1", "   Name: vSwitch1", "   Class: cswitch", "   Num Ports: 2560",
        "   Used Ports: 3", "   Configured Ports: 128", "   MTU: 9000", "   CDP Status: listen",
        "   Beacon Enabled: false", "   Beacon Interval: 1", "   Beacon Threshold: 3",
        "   Beacon Required By:", "   Uplinks: vmnic1, vmnic2",
        "   Portgroups: vMotion-A, Storage"]
    ok(store, "network", "vswitch", "standard", "set", "-v", "vSwitch1", "--mtu", "1500")
    rows = as_json(store, "network", "vswitch", "standard", "list", "-v", "vSwitch1")
    assert rows[0]["MTU"] == 1500 and rows[0]["Uplinks"] == ["vmnic1", "vmnic2"]
    assert refused(store, "network", "vswitch", "standard", "add", "-v", "vSwitch1") == (
        "A portset with this name already exists")
    ok(store, "network", "vswitch", "standard", "uplink", "remove", "-u", "vmnic2",
       "-v", "vSwitch1")
    ok(store, "network", "ip", "interface", "add", "-i", "vmk1", "-p", "Storage")
    assert refused(store, "network", "vswitch", "standard", "remove", "-v", "vSwitch1").startswith(
        "Virtual switch vSwitch1 has VMkernel adapters (vmk1)")
    ok(store, "network", "ip", "interface", "remove", "-i", "vmk1")
    ok(store, "network", "vswitch", "standard", "remove", "-v", "vSwitch1")


def test_portgroup_list_set_remove(store: Path) -> None:
    with_switch(store)
    ok(store, "network", "vswitch", "standard", "portgroup", "set", "-p", "vMotion-A",
       "--vlan-id", "20")
    ok(store, "network", "ip", "interface", "add", "-i", "vmk1", "-p", "vMotion-A")
    lines = ok(store, "network", "vswitch", "standard", "portgroup", "list").splitlines()
    assert lines[0] == "Name                Virtual Switch  Active Clients  VLAN ID"
    assert lines[2] == "Management Network  vSwitch0                     1        0"
    assert lines[3] == "vMotion-A           vSwitch1                     1       20"
    assert as_json(store, "network", "vswitch", "standard", "portgroup", "list")[2] == {
        "Name": "Storage", "Virtual Switch": "vSwitch1", "Active Clients": 0, "VLAN ID": 0}
    assert esx(store, "network", "vswitch", "standard", "portgroup", "set", "-p", "Storage",
               "-v", "5000").exit_code == 2
    assert refused(store, "network", "vswitch", "standard", "portgroup", "remove", "-p",
                   "vMotion-A", "-v", "vSwitch1").startswith("Portgroup vMotion-A is in use")
    ok(store, "network", "vswitch", "standard", "portgroup", "remove", "-p", "Storage",
       "-v", "vSwitch1")


def test_failover_policy_of_switch_and_portgroup(store: Path) -> None:
    with_switch(store)
    ok(store, "network", "vswitch", "standard", "policy", "failover", "set", "-v", "vSwitch1",
       "-a", "vmnic1", "-s", "vmnic2", "-l", "mac", "-b", "false", "-n", "yes")
    assert ok(store, "network", "vswitch", "standard", "policy", "failover", "get", "-v",
              "vSwitch1").splitlines() == [
        "   Load Balancing: srcmac", "   Network Failure Detection: link",
        "   Notify Switches: true", "   Failback: false", "   Active Adapters: vmnic1",
        "   Standby Adapters: vmnic2", "   Unused Adapters:"]
    ok(store, "network", "vswitch", "standard", "portgroup", "policy", "failover", "set",
       "-p", "Storage", "--active-uplinks", "vmnic2", "--standby-uplinks", "")
    got = as_json(store, "network", "vswitch", "standard", "portgroup", "policy", "failover",
                  "get", "-p", "Storage")[0]
    assert (got["Active Adapters"], got["Standby Adapters"], got["Unused Adapters"]) == (
        ["vmnic2"], [], ["vmnic1"])
    assert got["Override Vswitch Uplinks"] is True
    assert got["Override Vswitch Failback"] is False
    ok(store, "network", "vswitch", "standard", "portgroup", "policy", "failover", "set",
       "-p", "Storage", "-u")
    got = as_json(store, "network", "vswitch", "standard", "portgroup", "policy", "failover",
                  "get", "-p", "Storage")[0]
    assert got["Active Adapters"] == ["vmnic1"] and got["Override Vswitch Uplinks"] is False
    assert refused(store, "network", "vswitch", "standard", "portgroup", "policy", "failover",
                   "get", "-p", "nope") == "Portgroup nope not found"
    assert esx(store, "network", "vswitch", "standard", "policy", "failover", "set", "-v",
               "vSwitch1", "-l", "loadbased").exit_code == 2


# -- nic ----------------------------------------------------------------------------------


def test_nic_list_get_up_down_set(store: Path) -> None:
    lines = ok(store, "network", "nic", "list").splitlines()
    assert re.split(r"\s{2,}", lines[0]) == [
        "Name", "PCI Device", "Driver", "Admin Status", "Link Status", "Speed", "Duplex",
        "MAC Address", "MTU", "Description"]
    assert len(lines) == 2 + 4
    assert lines[2].split()[:7] == ["vmnic0", "0000:0b:00.0", "vmknet", "Up", "Up", "10000",
                                    "Full"]
    ok(store, "network", "nic", "down", "-n", "vmnic1")
    ok(store, "network", "nic", "set", "-n", "vmnic2", "-S", "1000", "-m", "9000")
    rows = {r["Name"]: r for r in as_json(store, "network", "nic", "list")}
    assert (rows["vmnic1"]["Link Status"], rows["vmnic1"]["Speed"]) == ("Down", 0)
    assert (rows["vmnic2"]["Speed"], rows["vmnic2"]["MTU"]) == (1000, 9000)
    assert "   Link Status: Down" in ok(store, "network", "nic", "get", "-n", "vmnic1")
    ok(store, "network", "nic", "up", "--nic-name", "vmnic1")
    assert as_json(store, "network", "nic", "get", "-n", "vmnic1")[0]["Link Detected"] is True
    assert refused(store, "network", "nic", "up", "-n", "vmnic9",
                   exit_code=3) == "Physical NIC vmnic9 not found"


# -- iscsi, vsan --------------------------------------------------------------------------


def test_iscsi_software_adapter_portal_binding_and_sendtargets(store: Path) -> None:
    with_switch(store)
    ok(store, "network", "vswitch", "standard", "portgroup", "policy", "failover", "set",
       "-p", "Storage", "-a", "vmnic1", "-s", "")
    ok(store, "network", "ip", "interface", "add", "-i", "vmk1", "-p", "Storage")
    ok(store, "network", "ip", "interface", "ipv4", "set", "-i", "vmk1", "-t", "static",
       "-I", "198.18.8.11", "-N", "255.255.255.0")
    assert ok(store, "iscsi", "software", "get") == "false\n"
    assert as_json(store, "iscsi", "adapter", "list") == []
    ok(store, "iscsi", "software", "set", "--enabled=true")
    assert as_json(store, "iscsi", "software", "get") == [{"Enabled": True}]
    lines = ok(store, "iscsi", "adapter", "list").splitlines()
    assert lines[0].split() == ["Adapter", "Driver", "State", "UID", "Description"]
    assert lines[2].startswith("vmhba64  iscsi_vmk  online")
    ok(store, "iscsi", "networkportal", "add", "-A", "vmhba64", "-n", "vmk1")
    out = ok(store, "iscsi", "networkportal", "list")
    assert out.startswith("vmhba64\n   Adapter: vmhba64\n   Vmknic: vmk1\n")
    assert "   IPv4: 198.18.8.11" in out and "   PortGroup: Storage" in out
    ok(store, "iscsi", "adapter", "discovery", "sendtarget", "add", "-A", "vmhba64",
       "-a", "198.18.8.50:3260")
    ok(store, "iscsi", "adapter", "discovery", "sendtarget", "add", "-A", "vmhba64",
       "--address", "198.18.8.51")
    assert as_json(store, "iscsi", "adapter", "discovery", "sendtarget", "list") == [
        {"Adapter": "vmhba64", "Sendtarget": "198.18.8.50:3260"},
        {"Adapter": "vmhba64", "Sendtarget": "198.18.8.51:3260"}]
    ok(store, "iscsi", "adapter", "discovery", "sendtarget", "remove", "-A", "vmhba64",
       "-a", "198.18.8.51")
    assert refused(store, "iscsi", "software", "set", "-e", "false").startswith(
        "The software iSCSI adapter still has bound VMkernel ports")
    assert refused(store, "network", "ip", "interface", "remove", "-i", "vmk1").startswith(
        "Vmknic vmk1 is bound to iSCSI adapter vmhba64")
    ok(store, "iscsi", "networkportal", "remove", "-A", "vmhba64", "-n", "vmk1")
    assert as_json(store, "iscsi", "networkportal", "list") == []
    ok(store, "iscsi", "software", "set", "--enabled", "no")
    assert refused(store, "iscsi", "networkportal", "add", "-A", "vmhba64", "-n",
                   "vmk1").startswith("Adapter vmhba64 not found")


def test_vsan_network_add_list_remove(store: Path) -> None:
    with_switch(store)
    ok(store, "network", "ip", "interface", "add", "-i", "vmk1", "-p", "Storage")
    ok(store, "vsan", "network", "ipv4", "add", "-i", "vmk1")
    out = ok(store, "vsan", "network", "list")
    assert out.startswith("Interface\n   VmkNic Name: vmk1\n   IP Protocol: IP\n")
    assert "   Traffic Type: vsan" in out
    assert tags(store, "vmk1") == "   Tags: VSAN\n"
    ok(store, "vsan", "network", "ipv4", "add", "-i", "vmk1", "--traffic-type", "witness")
    assert [r["Traffic Type"] for r in as_json(store, "vsan", "network", "list")] == [
        "vsan", "witness"]
    ok(store, "vsan", "network", "ipv4", "remove", "-i", "vmk1")
    assert as_json(store, "vsan", "network", "list") == []
    assert refused(store, "vsan", "network", "remove", "-i", "vmk1") == (
        "Vmknic vmk1 is not a vSAN interface")


# -- shared behaviour ---------------------------------------------------------------------


@pytest.mark.parametrize("text,expected", [
    ("true", True), ("TRUE", True), ("1", True), ("yes", True),
    ("false", False), ("0", False), ("No", False),
])
def test_booleans_parse_as_esxi_does(store: Path, text: str, expected: bool) -> None:
    policy = ("network", "vswitch", "standard", "policy", "failover")
    ok(store, *policy, "set", "-v", "vSwitch0", "--failback", "false" if expected else "true")
    ok(store, *policy, "set", "-v", "vSwitch0", "--failback", text)
    assert as_json(store, *policy, "get", "-v", "vSwitch0")[0]["Failback"] is expected


def test_bad_boolean_is_a_usage_error(store: Path) -> None:
    result = esx(store, "network", "ip", "interface", "set", "-i", "vmk0", "-e", "maybe")
    assert result.exit_code == 2 and "true|false|1|0|yes|no" in result.stderr


JSON_COMMANDS = [
    ("network", "ip", "interface", "list"),
    ("network", "ip", "interface", "ipv4", "get"),
    ("network", "ip", "interface", "ipv6", "get"),
    ("network", "ip", "interface", "ipv6", "address", "list"),
    ("network", "ip", "interface", "tag", "get", "-i", "vmk0"),
    ("network", "ip", "netstack", "list"),
    ("network", "ip", "netstack", "get", "-N", "defaultTcpipStack"),
    ("network", "ip", "route", "ipv4", "list"),
    ("network", "ip", "route", "ipv6", "list"),
    ("network", "ip", "dns", "server", "list"),
    ("network", "ip", "dns", "search", "list"),
    ("network", "vswitch", "standard", "list"),
    ("network", "vswitch", "standard", "portgroup", "list"),
    ("network", "vswitch", "standard", "policy", "failover", "get", "-v", "vSwitch0"),
    ("network", "vswitch", "standard", "portgroup", "policy", "failover", "get", "-p",
     "Management Network"),
    ("network", "nic", "list"),
    ("network", "nic", "get", "-n", "vmnic0"),
    ("iscsi", "software", "get"),
    ("iscsi", "adapter", "list"),
    ("iscsi", "networkportal", "list"),
    ("iscsi", "adapter", "discovery", "sendtarget", "list"),
    ("vsan", "network", "list"),
]


@pytest.mark.parametrize("words", JSON_COMMANDS, ids=lambda w: " ".join(w))
def test_every_list_and_get_takes_json(store: Path, words: tuple[str, ...]) -> None:
    as_json(store, *words)


def test_formatter_json_before_the_namespace(store: Path) -> None:
    result = CliRunner().invoke(esxcli, ["-H", "esx01", "--formatter=json", "network", "nic",
                                         "list"], obj=AppContext(store_path=store))
    assert result.exit_code == 0
    assert [r["Name"] for r in json.loads(result.stdout)] == [f"vmnic{i}" for i in range(4)]


def test_unknown_words_and_options_are_usage_errors(store: Path) -> None:
    assert esx(store, "network", "ip", "bogus", "list").exit_code == 2
    assert esx(store, "network", "ip", "interface", "list", "--bogus").exit_code == 2
    assert esx(store, "network", "ip", "interface", "tag", "add", "-i", "vmk0").exit_code == 2
    assert CliRunner().invoke(esxcli, ["network", "nic", "list"],
                              obj=AppContext(store_path=store)).exit_code == 2


def test_unknown_host_is_refused(store: Path) -> None:
    result = esx(store, "network", "nic", "list", host="esx99")
    assert result.exit_code == 3
    assert result.stderr.strip() == "Host 'esx99' not found: add it with 'vmknet host add esx99'"
    result = esx(store, "network", "ip", "netstack", "add", "-N", "custom", host="esx99")
    assert result.exit_code == 3


def test_tag_names_round_trip_through_service_parse() -> None:
    for service in Service:
        assert Service.parse(service.tag.upper()) is service


# -- ESXi's published error wording (docs/cli.md names where each was seen) -----------------


def test_errors_scripts_match_on_are_esxis_words(store: Path) -> None:
    with_switch(store)
    assert refused(store, "network", "vswitch", "standard", "uplink", "add", "-u", "vmnic1",
                   "-v", "vSwitch1", exit_code=4) == "Uplink already exists: vmnic1"
    assert refused(store, "network", "vswitch", "standard", "uplink", "remove", "-u",
                   "vmnic3", "-v", "vSwitch1", exit_code=3) == "No such uplink: vmnic3"
    assert refused(store, "network", "vswitch", "standard", "portgroup", "add", "-p",
                   "Storage", "-v", "vSwitch1") == (
        "A portgroup with the name Storage already exists")
    assert refused(store, "network", "ip", "interface", "tag", "remove", "-i", "vmk0", "-t",
                   "VMotion", exit_code=3) == "Vmknic is not tagged with VMotion"
    # vmknet's own words where ESXi's are not published: the adapter is named
    assert refused(store, "network", "ip", "interface", "remove", "-i", "vmk7") == (
        "Vmknic vmk7 not found")
