"""`esxcli iscsi software|adapter|networkportal ...` and `esxcli vsan network ...`."""

from __future__ import annotations

import hashlib
from ipaddress import IPv4Address, IPv6Address, ip_address
from typing import Any, Literal

import click

from ...lab import bound_lab
from ...model import Host, Service, derived_mac
from ...ops import storage as ops
from . import storage_portal
from .common import BOOL, Esx, natural_key, pass_esx, vmk_option
from .errors import esxcli_reported
from .formatting import Record, json_option, show_blocks, show_table, show_value
from .kernel import nic_links_if_bound

ADAPTER_COLUMNS = ("Adapter", "Driver", "State", "UID", "Description")
SENDTARGET_COLUMNS = ("Adapter", "Sendtarget")
ISCSI_PORT = 3260


@click.group()
def iscsi() -> None:
    """iSCSI storage: the software adapter, port binding, discovery."""


@iscsi.group()
def software() -> None:
    """The software iSCSI adapter."""


@software.command("set")
@click.option("-e", "--enabled", "enabled", type=BOOL, required=True,
              help="true creates the software iSCSI adapter, false removes it.")
@pass_esx
def software_set(esx: Esx, enabled: bool) -> None:
    """Enable or disable software iSCSI."""
    esx.run(ops.iscsi_software_set, enabled=enabled)


@software.command("get")
@json_option
@pass_esx
def software_get(esx: Esx, as_json: bool) -> None:
    """Show whether software iSCSI is enabled."""
    enabled = esx.read().storage.iscsi is not None
    show_value(enabled, as_json, json_field="Enabled")


@iscsi.group()
def adapter() -> None:
    """iSCSI adapters (vmhbaN)."""


@adapter.command("list")
@json_option
@pass_esx
def adapter_list(esx: Esx, as_json: bool) -> None:
    """List the iSCSI adapters."""
    sw = esx.read().storage.iscsi
    rows: list[Record] = [] if sw is None else [
        {"Adapter": sw.name, "Driver": "iscsi_vmk", "State": "online",
         "UID": f"iscsi.{sw.name}", "Description": "iSCSI Software Adapter"}]
    show_table(ADAPTER_COLUMNS, rows, as_json, type_name="Adapter")


def adapter_option(f: click.decorators.FC) -> click.decorators.FC:
    return click.option("-A", "--adapter", "adapter", required=True,
                        help="The iSCSI adapter (vmhbaN).")(f)


@adapter.group()
def discovery() -> None:
    """Target discovery."""


@discovery.group()
def sendtarget() -> None:
    """Send-target (dynamic) discovery portals."""


def _portal(ctx: click.Context, param: click.Parameter,
            value: str) -> IPv4Address | IPv6Address:
    """`ip`, `ip:3260`, `[v6]:3260`; vmknet models portals on the iSCSI port only."""
    text, port = value.strip(), str(ISCSI_PORT)
    if text.startswith("["):
        text, _, rest = text[1:].partition("]")
        port = rest.removeprefix(":") or port
    elif text.count(":") == 1:
        text, _, port = text.partition(":")
    try:
        addr = ip_address(text)
    except ValueError:
        raise click.BadParameter(f"'{value}' is not an address[:port]", ctx, param) from None
    if port != str(ISCSI_PORT):
        raise click.BadParameter(f"port {port}: vmknet models portals on port {ISCSI_PORT}",
                                 ctx, param)
    return addr


def address_option(f: click.decorators.FC) -> click.decorators.FC:
    return click.option("-a", "--address", "address", required=True, callback=_portal,
                        help="Target portal address[:port].")(f)


@sendtarget.command("add")
@adapter_option
@address_option
@pass_esx
def sendtarget_add(esx: Esx, adapter: str, address: IPv4Address | IPv6Address) -> None:
    """Add a send-target portal."""
    esx.run(ops.sendtarget_add, adapter=adapter, address=address)


@sendtarget.command("remove")
@adapter_option
@address_option
@pass_esx
def sendtarget_remove(esx: Esx, adapter: str, address: IPv4Address | IPv6Address) -> None:
    """Remove a send-target portal."""
    esx.run(ops.sendtarget_remove, adapter=adapter, address=address)


def _portal_text(addr: IPv4Address | IPv6Address) -> str:
    return f"{addr}:{ISCSI_PORT}" if addr.version == 4 else f"[{addr}]:{ISCSI_PORT}"


@sendtarget.command("list")
@json_option
@pass_esx
def sendtarget_list(esx: Esx, as_json: bool) -> None:
    """List the send-target portals."""
    sw = esx.read().storage.iscsi
    rows: list[Record] = [] if sw is None else [
        {"Adapter": sw.name, "Sendtarget": _portal_text(t)} for t in sw.targets]
    show_table(SENDTARGET_COLUMNS, rows, as_json, type_name="SendTarget")


@iscsi.group()
def networkportal() -> None:
    """iSCSI port binding: VMkernel adapters bound to an iSCSI adapter."""


@networkportal.command("add")
@adapter_option
@click.option("-n", "--nic", "vmk", required=True, help="The VMkernel adapter (vmkN).")
@pass_esx
def networkportal_add(esx: Esx, adapter: str, vmk: str) -> None:
    """Bind a VMkernel adapter to an iSCSI adapter (STO-1 is checked)."""
    esx.run(ops.networkportal_add, adapter=adapter, vmk=vmk)


@networkportal.command("remove")
@adapter_option
@click.option("-n", "--nic", "vmk", required=True, help="The VMkernel adapter (vmkN).")
@pass_esx
def networkportal_remove(esx: Esx, adapter: str, vmk: str) -> None:
    """Unbind a VMkernel adapter from an iSCSI adapter."""
    esx.run(ops.networkportal_remove, adapter=adapter, vmk=vmk)


def portal_record(host: str, h: Host, adapter: str, vmk_name: str) -> Record:
    vmk = h.vmknics[vmk_name]
    vswitch = next((n for n, vs in h.vswitches.items() if vmk.portgroup in vs.portgroups), "")
    iface = vmk.ipv4.address
    return {
        "Adapter": adapter,
        "Vmknic": vmk_name,
        "MAC Address": vmk.mac or derived_mac(host, vmk_name),
        "MAC Address Valid": True,
        "IPv4": str(iface.ip) if iface else "",
        "IPv4 Subnet Mask": str(iface.netmask) if iface else "",
        "IPv6": ", ".join(str(a) for a in vmk.ipv6.addresses),
        "MTU": vmk.mtu,
        "Vlan Supported": True,
        "Vlan ID": h.vswitches[vswitch].portgroups[vmk.portgroup or ""].vlan if vswitch else 0,
        "Compliant Status": "compliant",
        "Vswitch": vswitch or (vmk.dvs or ""),
        "PortGroup": vmk.portgroup if vmk.dvs is None and vmk.portgroup else
        (vmk.dvportgroup or ""),
    }


@networkportal.command("list")
@click.option("-A", "--adapter", "adapter", help="Only this iSCSI adapter.")
@json_option
@pass_esx
def networkportal_list(esx: Esx, adapter: str | None, as_json: bool) -> None:
    """List the VMkernel adapters bound to iSCSI adapters."""
    h = esx.read()
    sw = h.storage.iscsi
    rows = [] if sw is None or adapter not in (None, sw.name) else [
        portal_record(esx.host, h, sw.name, v) for v in sw.bound_vmknics if v in h.vmknics]
    lab = bound_lab(esx.app.inventory)
    if rows and sw is not None and lab is not None:  # a built lab: the kernel's facts too
        with esxcli_reported():
            rows = storage_portal.live(rows, esx.datacenter(), lab, esx.host, sw.name,
                                       nic_links_if_bound(esx) or {})
    show_blocks(rows, as_json, title="Adapter", type_name="NetworkPortal")


@click.group()
def vsan() -> None:
    """vSAN: the VMkernel adapters that carry vSAN traffic."""


@vsan.group("network")
def vsan_network() -> None:
    """vSAN network interfaces."""


@vsan_network.group("ipv4")
def vsan_ipv4() -> None:
    """vSAN over IPv4 VMkernel adapters."""


@vsan_ipv4.command("add")
@vmk_option()
@click.option("-T", "--traffic-type", "traffic", type=click.Choice(["vsan", "witness"]),
              default="vsan", show_default=True, help="vSAN data or witness traffic.")
@pass_esx
def vsan_add(esx: Esx, interface: str, traffic: str) -> None:
    """Use an adapter for vSAN (tags it VSAN or VSANWitness)."""
    kind: Literal["vsan", "witness"] = "witness" if traffic == "witness" else "vsan"
    esx.run(ops.vsan_network_add, vmk=interface, traffic=kind)


def _vsan_remove(esx: Esx, interface: str) -> None:
    esx.run(ops.vsan_network_remove, vmk=interface)


for _group in (vsan_ipv4, vsan_network):
    _group.command("remove", help="Stop using an adapter for vSAN.")(
        vmk_option()(pass_esx(_vsan_remove)))


def vsan_record(host: str, name: str, traffic: str) -> dict[str, Any]:
    uuid = hashlib.sha256(f"{host}/{name}/vsan".encode()).hexdigest()
    return {
        "VmkNic Name": name,
        "IP Protocol": "IP",
        "Interface UUID": f"{uuid[:8]}-{uuid[8:12]}-{uuid[12:16]}-{uuid[16:20]}-{uuid[20:32]}",
        "Agent Group Multicast Address": "224.2.3.4",
        "Agent Group IPv6 Multicast Address": "ff19::2:3:4",
        "Agent Group Multicast Port": 23451,
        "Master Group Multicast Address": "224.1.2.3",
        "Master Group IPv6 Multicast Address": "ff19::1:2:3",
        "Master Group Multicast Port": 12345,
        "Host Unicast Channel Bound Port": 12321,
        "Multicast TTL": 5,
        "Traffic Type": traffic,
    }


@vsan_network.command("list")
@json_option
@pass_esx
def vsan_list(esx: Esx, as_json: bool) -> None:
    """List the adapters that carry vSAN or vSAN witness traffic."""
    h = esx.read()
    types = {Service.VSAN: "vsan", Service.VSAN_WITNESS: "witness"}
    rows: list[Record] = [vsan_record(esx.host, n, t) for n in sorted(h.vmknics, key=natural_key)
                          for s, t in types.items() if s in h.vmknics[n].services]
    show_blocks(rows, as_json, title=lambda _row: "Interface",
                type_name="VsanNetworkInterface")
