"""`esxcli network ip interface add|remove|set|list` and `... interface tag add|remove|get`."""

from __future__ import annotations

import hashlib
import re

import click

from ...model import Host, Service, Vmknic, derived_mac
from ...ops import interface as ops
from .common import BOOL, MTU, Esx, Tag, natural_key, netstack_option, pass_esx, vmk_option
from .formatting import Record, json_option, show_blocks

_MAC = re.compile(r"[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}")
_PORTSET_BASE = 0x2000000  # vSwitch0's ports are 335544xx on ESXi, the next switch's 503316xx


@click.group()
def interface() -> None:
    """VMkernel network interfaces (vmkN)."""


def _mac(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    if value is not None and not _MAC.fullmatch(value):
        raise click.BadParameter(f"'{value}' is not a MAC address (xx:xx:xx:xx:xx:xx)",
                                 ctx, param)
    return value.lower() if value else None


@interface.command("add")
@vmk_option()
@click.option("-p", "--portgroup-name", "portgroup", help="Standard port group to connect to.")
@click.option("-s", "--dvs-name", "dvs", help="Distributed switch to connect to.")
@click.option("-v", "--dvport-id", "dvport", help="Distributed port group on --dvs-name.")
@netstack_option(default=None)
@click.option("-m", "--mtu", type=MTU, help="MTU (1280-9000).")
@click.option("-M", "--mac-address", "mac", callback=_mac, help="MAC address.")
@pass_esx
def add(esx: Esx, interface: str, portgroup: str | None, dvs: str | None,
        dvport: str | None, netstack: str | None, mtu: int | None, mac: str | None) -> None:
    """Add a VMkernel adapter to a port group or a distributed port group."""
    if (portgroup is None) == (dvs is None) or (dvs is None) != (dvport is None):
        raise click.UsageError("Give either -p PORTGROUP or both -s DVS and -v DVPORTGROUP")
    esx.run(ops.add, name=interface, portgroup=portgroup, dvs=dvs, dvportgroup=dvport,
            netstack=netstack, mtu=mtu, mac=mac)


@interface.command("remove")
@vmk_option()
@pass_esx
def remove(esx: Esx, interface: str) -> None:
    """Remove a VMkernel adapter."""
    esx.run(ops.remove, name=interface)


@interface.command("set")
@vmk_option()
@click.option("-e", "--enabled", type=BOOL, help="Enable or disable the adapter.")
@click.option("-m", "--mtu", type=MTU, help="MTU (1280-9000).")
@pass_esx
def set_(esx: Esx, interface: str, enabled: bool | None, mtu: int | None) -> None:
    """Enable/disable an adapter or change its MTU."""
    esx.run(ops.set_, name=interface, enabled=enabled, mtu=mtu)


def _hex_uuid(text: str) -> str:
    """ESXi's UUID spelling ("50 2e 7f 5b 1a 3b 65 2a-0b 3c 8a 26 6f d8 d4 b5"), derived."""
    digest = hashlib.sha256(text.encode()).hexdigest()
    pairs = [digest[i:i + 2] for i in range(0, 32, 2)]
    return " ".join(["50", *pairs[1:8]]) + "-" + " ".join(pairs[8:16])


def interface_record(host_name: str, h: Host, name: str, vmk: Vmknic) -> Record:
    """The fields of `interface list` for one adapter; values ESXi has but vmknet does not
    model (MAC, port ids, UUIDs) are derived from the names, the same on every run."""
    order = sorted(h.vmknics, key=natural_key).index(name)
    if vmk.dvs is not None:
        portset, switch_index = "DvsPortset-0", len(h.vswitches)
    else:
        portset = next((vs for vs, sw in h.vswitches.items() if vmk.portgroup in sw.portgroups),
                       "N/A")
        switch_index = list(h.vswitches).index(portset) if portset in h.vswitches else 0
    port_id = _PORTSET_BASE + switch_index * 0x1000000 + 4 + order
    return {
        "Name": name,
        "MAC Address": vmk.mac or derived_mac(host_name, name),
        "Enabled": vmk.enabled,
        "Portset": portset,
        "Portgroup": vmk.portgroup if vmk.dvs is None and vmk.portgroup else "N/A",
        "Netstack Instance": vmk.netstack,
        "VDS Name": vmk.dvs or "N/A",
        "VDS UUID": _hex_uuid(vmk.dvs) if vmk.dvs else "N/A",
        "VDS Port": vmk.dvportgroup or "N/A",
        "VDS Connection": port_id if vmk.dvs else -1,
        "Opaque Network ID": "N/A",
        "Opaque Network Type": "N/A",
        "External ID": "N/A",
        "MTU": vmk.mtu,
        "TSO MSS": 65535,
        "RXDispQueue Size": 1,
        "Port ID": port_id,
    }


@interface.command("list")
@netstack_option(default=None)
@json_option
@pass_esx
def list_(esx: Esx, netstack: str | None, as_json: bool) -> None:
    """List the VMkernel adapters (all, or those of one netstack)."""
    if netstack is not None:
        esx.netstack(netstack)
    h = esx.read()
    rows = [interface_record(esx.host, h, name, h.vmknics[name])
            for name in sorted(h.vmknics, key=natural_key)
            if netstack is None or h.vmknics[name].netstack == netstack]
    show_blocks(rows, as_json, type_name="NetworkInterface")


@interface.group()
def tag() -> None:
    """Service tags (system traffic) of an adapter."""


@tag.command("add")
@vmk_option()
@click.option("-t", "--tagname", "tagname", type=Tag(), required=True,
              help="Management, VMotion, vSphereProvisioning, faultToleranceLogging, "
                   "vSphereReplication, vSphereReplicationNFC, VSAN, VSANWitness, "
                   "vSphereBackupNFC, NVMeTCP.")
@pass_esx
def tag_add(esx: Esx, interface: str, tagname: Service) -> None:
    """Tag an adapter with a service."""
    esx.run(ops.tag_add, name=interface, service=tagname)


@tag.command("remove")
@vmk_option()
@click.option("-t", "--tagname", "tagname", type=Tag(), required=True, help="The tag.")
@pass_esx
def tag_remove(esx: Esx, interface: str, tagname: Service) -> None:
    """Remove a service tag from an adapter."""
    esx.run(ops.tag_remove, name=interface, service=tagname)


@tag.command("get")
@vmk_option()
@json_option
@pass_esx
def tag_get(esx: Esx, interface: str, as_json: bool) -> None:
    """Show the tags of an adapter."""
    tags = [s.tag for s in esx.vmknic(interface).services]
    show_blocks([{"Tags": tags}], as_json, title=None, type_name="InterfaceTags", single=True)
