"""`esxcli network vswitch standard add|remove|list|set`, `... uplink` and `... portgroup`."""

from __future__ import annotations

import click

from ...model import Host
from ...ops import vswitch as ops
from .common import MTU, Esx, natural_key, pass_esx
from .failover import portgroup_policy, vswitch_policy
from .formatting import Record, json_option, show_blocks, show_table

PORTGROUP_COLUMNS = ("Name", "Virtual Switch", "Active Clients", "VLAN ID")
NUM_PORTS = 2560  # what ESXi reports for a standard switch of 128 configured ports
CONFIGURED_PORTS = 128


def vswitch_option(f: click.decorators.FC) -> click.decorators.FC:
    return click.option("-v", "--vswitch-name", "vswitch", required=True,
                        help="The standard switch (vSwitchN).")(f)


def portgroup_option(f: click.decorators.FC) -> click.decorators.FC:
    return click.option("-p", "--portgroup-name", "portgroup", required=True,
                        help="The port group.")(f)


@click.group()
def vswitch() -> None:
    """Virtual switches."""


@vswitch.group()
def standard() -> None:
    """Standard switches (vSwitchN)."""


@standard.command("add")
@vswitch_option
@click.option("-m", "--mtu", type=MTU, help="MTU (1280-9000, default 1500).")
@pass_esx
def add(esx: Esx, vswitch: str, mtu: int | None) -> None:
    """Add a standard switch."""
    esx.run(ops.add, name=vswitch, mtu=mtu)


@standard.command("remove")
@vswitch_option
@pass_esx
def remove(esx: Esx, vswitch: str) -> None:
    """Remove a standard switch that carries no VMkernel adapter."""
    esx.run(ops.remove, name=vswitch)


@standard.command("set")
@vswitch_option
@click.option("-m", "--mtu", type=MTU, help="MTU (1280-9000).")
@pass_esx
def set_(esx: Esx, vswitch: str, mtu: int | None) -> None:
    """Change the MTU of a standard switch."""
    esx.run(ops.set_, name=vswitch, mtu=mtu)


def _clients(h: Host, portgroup: str) -> int:
    return sum(1 for vmk in h.vmknics.values() if vmk.dvs is None and vmk.portgroup == portgroup)


def vswitch_record(h: Host, name: str) -> Record:
    vs = h.vswitches[name]
    clients = sum(_clients(h, pg) for pg in vs.portgroups)
    return {
        "Name": name,
        "Class": "cswitch",
        "Num Ports": NUM_PORTS,
        "Used Ports": 1 + len(vs.uplinks) + clients,
        "Configured Ports": CONFIGURED_PORTS,
        "MTU": vs.mtu,
        "CDP Status": "listen",
        "Beacon Enabled": False,
        "Beacon Interval": 1,
        "Beacon Threshold": 3,
        "Beacon Required By": [],
        "Uplinks": list(vs.uplinks),
        "Portgroups": list(vs.portgroups),
    }


@standard.command("list")
@click.option("-v", "--vswitch-name", "vswitch", help="Only this switch.")
@json_option
@pass_esx
def list_(esx: Esx, vswitch: str | None, as_json: bool) -> None:
    """List the standard switches."""
    h = esx.read()
    names = [n for n in sorted(h.vswitches, key=natural_key) if vswitch in (None, n)]
    show_blocks([vswitch_record(h, n) for n in names], as_json, type_name="VirtualSwitch")


@standard.group()
def uplink() -> None:
    """Uplinks (physical NICs) of a standard switch."""


@uplink.command("add")
@click.option("-u", "--uplink-name", "uplink", required=True, help="Physical NIC (vmnicN).")
@vswitch_option
@pass_esx
def uplink_add(esx: Esx, uplink: str, vswitch: str) -> None:
    """Add an uplink to a standard switch (it becomes active in the failover order)."""
    esx.run(ops.uplink_add, vswitch=vswitch, uplink=uplink)


@uplink.command("remove")
@click.option("-u", "--uplink-name", "uplink", required=True, help="Physical NIC (vmnicN).")
@vswitch_option
@pass_esx
def uplink_remove(esx: Esx, uplink: str, vswitch: str) -> None:
    """Remove an uplink from a standard switch."""
    esx.run(ops.uplink_remove, vswitch=vswitch, uplink=uplink)


@standard.group()
def portgroup() -> None:
    """Port groups of standard switches."""


@portgroup.command("add")
@portgroup_option
@vswitch_option
@pass_esx
def portgroup_add(esx: Esx, portgroup: str, vswitch: str) -> None:
    """Add a port group to a standard switch."""
    esx.run(ops.portgroup_add, vswitch=vswitch, name=portgroup)


@portgroup.command("remove")
@portgroup_option
@vswitch_option
@pass_esx
def portgroup_remove(esx: Esx, portgroup: str, vswitch: str) -> None:
    """Remove a port group that no adapter uses."""
    esx.run(ops.portgroup_remove, vswitch=vswitch, name=portgroup)


@portgroup.command("list")
@json_option
@pass_esx
def portgroup_list(esx: Esx, as_json: bool) -> None:
    """List the port groups of every standard switch."""
    h = esx.read()
    rows: list[Record] = [
        {"Name": pg, "Virtual Switch": vs, "Active Clients": _clients(h, pg),
         "VLAN ID": h.vswitches[vs].portgroups[pg].vlan}
        for vs in sorted(h.vswitches, key=natural_key) for pg in h.vswitches[vs].portgroups
    ]
    show_table(PORTGROUP_COLUMNS, rows, as_json, type_name="PortGroup")


@portgroup.command("set")
@portgroup_option
@click.option("-v", "--vlan-id", "vlan", type=click.IntRange(0, 4095), required=True,
              help="VLAN id: 0 untagged, 1-4094 tagged, 4095 all (trunk).")
@pass_esx
def portgroup_set(esx: Esx, portgroup: str, vlan: int) -> None:
    """Set the VLAN id of a port group."""
    esx.run(ops.portgroup_set, name=portgroup, vlan=vlan)


@standard.group("policy")
def policy() -> None:
    """Policies of a standard switch."""


@portgroup.group("policy")
def portgroup_policy_group() -> None:
    """Policies of a port group (overrides of its switch's)."""


policy.add_command(vswitch_policy)
portgroup_policy_group.add_command(portgroup_policy)
