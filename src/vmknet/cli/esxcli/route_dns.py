"""`esxcli network ip route ipv4|ipv6 add|remove|list` and `network ip dns server|search ...`."""

from __future__ import annotations

from collections.abc import Callable
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network
from typing import TypeVar

import click

from ...model import Host
from ...ops import netstack as ops
from . import kernel
from .common import Esx, IPAddr, Network, natural_key, netstack_option, pass_esx
from .formatting import Record, json_option, show_blocks, show_table

ROUTE_COLUMNS = ("Network", "Netmask", "Gateway", "Interface", "Source")
F = TypeVar("F", bound=Callable[..., object])


@click.group()
def route() -> None:
    """Static routes and default gateways of a netstack."""


def _egress(h: Host, stack: str, gateway: IPv4Address | IPv6Address) -> str:
    """The adapter of `stack` whose subnet holds `gateway` (ESXi's Interface column)."""
    for name in sorted(h.vmknics, key=natural_key):
        vmk = h.vmknics[name]
        if vmk.netstack != stack:
            continue
        nets: list[IPv4Network | IPv6Network] = [a.network for a in vmk.ipv6.addresses]
        if vmk.ipv4.address is not None:
            nets.append(vmk.ipv4.address.network)
        if any(n.version == gateway.version and gateway in n for n in nets):
            return name
    return "None"


def route_rows(h: Host, stack: str, version: int) -> list[Record]:
    """Default route, connected subnets, then static routes, as ESXi lists them."""
    ns = h.netstacks[stack]
    any_addr = "0.0.0.0" if version == 4 else "::"

    def mask(net: IPv4Network | IPv6Network) -> str | int:
        return str(net.netmask) if version == 4 else net.prefixlen

    rows: list[Record] = []
    gateway = ns.gateway if version == 4 else ns.ipv6_gateway
    if gateway is not None:
        rows.append({"Network": "default", "Netmask": any_addr if version == 4 else 0,
                     "Gateway": str(gateway), "Interface": _egress(h, stack, gateway),
                     "Source": "MANUAL"})
    for name in sorted(h.vmknics, key=natural_key):
        vmk = h.vmknics[name]
        if vmk.netstack != stack:
            continue
        nets: list[IPv4Network | IPv6Network] = (
            [vmk.ipv4.address.network] if version == 4 and vmk.ipv4.address is not None
            else [a.network for a in vmk.ipv6.addresses] if version == 6 else [])
        rows.extend({"Network": str(n.network_address), "Netmask": mask(n),
                     "Gateway": any_addr, "Interface": name, "Source": "MANUAL"} for n in nets)
    rows.extend({"Network": str(r.network.network_address), "Netmask": mask(r.network),
                 "Gateway": str(r.gateway), "Interface": _egress(h, stack, r.gateway),
                 "Source": "MANUAL"}
                for r in ns.routes if r.network.version == version)
    return rows


def _route_group(version: int) -> click.Group:
    group = click.Group(f"ipv{version}", help=f"IPv{version} routes of a netstack.")
    network = click.option("-n", "--network", "network", type=Network(version), required=True,
                           help="Destination network/prefix, or 'default'.")

    def gateway(required: bool) -> Callable[[F], F]:
        return click.option("-g", "--gateway", "gateway", type=IPAddr(version),
                            required=required, help="Next hop.")

    @group.command("add")
    @network
    @gateway(True)
    @netstack_option()
    @pass_esx
    def add(esx: Esx, network: str, gateway: IPv4Address | IPv6Address, netstack: str) -> None:
        """Add a static route (or the default gateway with -n default)."""
        esx.run(ops.route_add, network=network, gateway=gateway, netstack=netstack)

    @group.command("remove")
    @network
    @gateway(False)
    @netstack_option()
    @pass_esx
    def remove(esx: Esx, network: str, gateway: IPv4Address | IPv6Address | None,
               netstack: str) -> None:
        """Remove a static route (or the default gateway with -n default)."""
        esx.run(ops.route_remove, network=network, gateway=gateway, netstack=netstack,
                version=version)

    @group.command("list")
    @netstack_option()
    @json_option
    @pass_esx
    def list_(esx: Esx, netstack: str, as_json: bool) -> None:
        """List the routes of a netstack."""
        esx.netstack(netstack)
        rows = kernel.routes_if_bound(esx, netstack, version)  # the kernel's, when a lab is up
        show_table(ROUTE_COLUMNS, rows if rows is not None
                   else route_rows(esx.read(), netstack, version), as_json,
                   type_name=f"IPv{version}Route")

    return group


route.add_command(_route_group(4))
route.add_command(_route_group(6))


@click.group()
def dns() -> None:
    """DNS servers and search domains of a netstack."""


@dns.group()
def server() -> None:
    """DNS servers."""


@server.command("add")
@click.option("-s", "--server", "address", type=IPAddr(), required=True,
              help="DNS server address.")
@netstack_option()
@pass_esx
def server_add(esx: Esx, address: IPv4Address | IPv6Address, netstack: str) -> None:
    """Add a DNS server."""
    esx.run(ops.dns_server_add, server=address, netstack=netstack)


@server.command("remove")
@click.option("-s", "--server", "address", type=IPAddr(), required=True,
              help="DNS server address.")
@netstack_option()
@pass_esx
def server_remove(esx: Esx, address: IPv4Address | IPv6Address, netstack: str) -> None:
    """Remove a DNS server."""
    esx.run(ops.dns_server_remove, server=address, netstack=netstack)


@server.command("list")
@netstack_option()
@json_option
@pass_esx
def server_list(esx: Esx, netstack: str, as_json: bool) -> None:
    """List the DNS servers of a netstack."""
    servers = [str(s) for s in esx.netstack(netstack).dns_servers]
    show_blocks([{"DNSServers": servers}], as_json, title=None, type_name="DNSServerList",
                single=True)


@dns.group()
def search() -> None:
    """DNS search domains."""


@search.command("add")
@click.option("-d", "--domain", "domain", required=True, help="Search domain.")
@netstack_option()
@pass_esx
def search_add(esx: Esx, domain: str, netstack: str) -> None:
    """Add a search domain."""
    esx.run(ops.search_domain_add, domain=domain, netstack=netstack)


@search.command("remove")
@click.option("-d", "--domain", "domain", required=True, help="Search domain.")
@netstack_option()
@pass_esx
def search_remove(esx: Esx, domain: str, netstack: str) -> None:
    """Remove a search domain."""
    esx.run(ops.search_domain_remove, domain=domain, netstack=netstack)


@search.command("list")
@netstack_option()
@json_option
@pass_esx
def search_list(esx: Esx, netstack: str, as_json: bool) -> None:
    """List the search domains of a netstack."""
    domains = list(esx.netstack(netstack).search_domains)
    show_blocks([{"DNSSearch Domains": domains}], as_json, title=None,
                type_name="DNSSearchDomainList", single=True)
