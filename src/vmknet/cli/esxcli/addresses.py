"""`esxcli network ip interface ipv4 set|get` and `... interface ipv6 address|set|get`."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv6Address, IPv6Interface
from typing import Literal

import click

from ...model import Host
from ...ops import interface as ops
from .common import BOOL, Esx, IPAddr, IPv6Prefixed, natural_key, pass_esx, vmk_option
from .formatting import Record, json_option, show_table

IPV4_COLUMNS = ("Name", "IPv4 Address", "IPv4 Netmask", "IPv4 Broadcast", "Address Type",
                "Gateway", "DHCP DNS")
IPV6_COLUMNS = ("Name", "IPv6 Enabled", "DHCPv6 Enabled", "Router Adv Enabled", "DHCP DNS",
                "Gateway")
IPV4_TYPES: dict[str, Literal["static", "dhcp", "none"]] = {
    "static": "static", "dhcp": "dhcp", "none": "none"}
IPV6_ADDRESS_COLUMNS = ("Interface", "Address", "Netmask", "Type", "Status")


def _selected(esx: Esx, interface: str | None, netstack: str | None = None) -> tuple[Host,
                                                                                      list[str]]:
    """The host and the adapters a get/list shows: one (-i), one stack's (-N) or all."""
    if interface is not None:
        esx.vmknic(interface)
    if netstack is not None:
        esx.netstack(netstack)
    h = esx.read()
    names = [n for n in sorted(h.vmknics, key=natural_key)
             if (interface is None or n == interface)
             and (netstack is None or h.vmknics[n].netstack == netstack)]
    return h, names


@click.group()
def ipv4() -> None:
    """IPv4 settings of VMkernel adapters."""


@ipv4.command("set")
@vmk_option()
@click.option("-t", "--type", "type_", required=True,
              type=click.Choice(list(IPV4_TYPES), case_sensitive=False),
              help="How the adapter gets its address.")
@click.option("-I", "--ipv4", "address", type=IPAddr(4), help="Static IPv4 address.")
@click.option("-N", "--netmask", "netmask", type=IPAddr(4),
              help="Netmask of the static address (here -N is the netmask, not a netstack).")
@click.option("-g", "--gateway", "gateway", type=IPAddr(4),
              help="Gateway override for traffic leaving this adapter.")
@pass_esx
def ipv4_set(esx: Esx, interface: str, type_: str, address: IPv4Address | None,
             netmask: IPv4Address | None, gateway: IPv4Address | None) -> None:
    """Configure an adapter's IPv4 address: static, DHCP or none."""
    esx.run(ops.ipv4_set, name=interface, type=IPV4_TYPES[type_.lower()], address=address,
            netmask=netmask, gateway=gateway)


def ipv4_record(name: str, h: Host) -> Record:
    cfg = h.vmknics[name].ipv4
    iface = cfg.address
    return {
        "Name": name,
        "IPv4 Address": str(iface.ip) if iface else "0.0.0.0",
        "IPv4 Netmask": str(iface.netmask) if iface else "0.0.0.0",
        "IPv4 Broadcast": str(iface.network.broadcast_address) if iface else "0.0.0.0",
        "Address Type": cfg.type.upper(),
        "Gateway": str(cfg.gateway) if cfg.gateway else "0.0.0.0",
        "DHCP DNS": False,
    }


@ipv4.command("get")
@vmk_option(required=False)
@click.option("-N", "--netstack", "netstack", help="Only the adapters of this netstack.")
@json_option
@pass_esx
def ipv4_get(esx: Esx, interface: str | None, netstack: str | None, as_json: bool) -> None:
    """Show the IPv4 settings of one adapter (-i) or all."""
    h, names = _selected(esx, interface, netstack)
    show_table(IPV4_COLUMNS, [ipv4_record(n, h) for n in names], as_json,
               type_name="IPv4Interface")


@click.group()
def ipv6() -> None:
    """IPv6 settings of VMkernel adapters."""


@ipv6.group()
def address() -> None:
    """Static IPv6 addresses of VMkernel adapters."""


@address.command("add")
@vmk_option()
@click.option("-I", "--ipv6", "addr", type=IPv6Prefixed(), required=True,
              help="Address/prefix length, e.g. 2001:db8:4::11/64.")
@pass_esx
def address_add(esx: Esx, interface: str, addr: IPv6Interface) -> None:
    """Add a static IPv6 address to an adapter."""
    esx.run(ops.ipv6_address_add, name=interface, address=addr)


@address.command("remove")
@vmk_option()
@click.option("-I", "--ipv6", "addr", type=IPv6Prefixed(), required=True,
              help="Address/prefix length.")
@pass_esx
def address_remove(esx: Esx, interface: str, addr: IPv6Interface) -> None:
    """Remove a static IPv6 address from an adapter."""
    esx.run(ops.ipv6_address_remove, name=interface, address=addr)


@address.command("list")
@json_option
@pass_esx
def address_list(esx: Esx, as_json: bool) -> None:
    """List the IPv6 addresses of all adapters."""
    h = esx.read()
    rows: list[Record] = [
        {"Interface": name, "Address": str(a.ip), "Netmask": a.network.prefixlen,
         "Type": "STATIC", "Status": "PREFERRED"}
        for name in sorted(h.vmknics, key=natural_key) for a in h.vmknics[name].ipv6.addresses
    ]
    show_table(IPV6_ADDRESS_COLUMNS, rows, as_json, type_name="IPv6Address")


@ipv6.command("set")
@vmk_option()
@click.option("-d", "--enable-dhcpv6", "dhcpv6", type=BOOL, help="Obtain addresses by DHCPv6.")
@click.option("-r", "--enable-router-adv", "router_adv", type=BOOL,
              help="Obtain addresses by router advertisement.")
@click.option("-g", "--gateway", "gateway", type=IPAddr(6), help="IPv6 gateway override.")
@pass_esx
def ipv6_set(esx: Esx, interface: str, dhcpv6: bool | None, router_adv: bool | None,
             gateway: IPv6Address | None) -> None:
    """Configure DHCPv6, router advertisement and the gateway override of an adapter."""
    esx.run(ops.ipv6_set, name=interface, dhcpv6=dhcpv6, router_adv=router_adv,
            gateway=gateway)


def ipv6_record(name: str, h: Host) -> Record:
    vmk = h.vmknics[name]
    stack = h.netstacks.get(vmk.netstack)
    return {
        "Name": name,
        "IPv6 Enabled": stack.ipv6_enabled if stack else True,
        "DHCPv6 Enabled": vmk.ipv6.dhcpv6,
        "Router Adv Enabled": vmk.ipv6.autoconf,
        "DHCP DNS": False,
        "Gateway": str(vmk.ipv6.gateway) if vmk.ipv6.gateway else "::",
    }


@ipv6.command("get")
@vmk_option(required=False)
@click.option("-N", "--netstack", "netstack", help="Only the adapters of this netstack.")
@json_option
@pass_esx
def ipv6_get(esx: Esx, interface: str | None, netstack: str | None, as_json: bool) -> None:
    """Show the IPv6 settings of one adapter (-i) or all."""
    h, names = _selected(esx, interface, netstack)
    show_table(IPV6_COLUMNS, [ipv6_record(n, h) for n in names], as_json,
               type_name="IPv6Interface")
