"""`esxcli network ip netstack ...`, routes and DNS: the TCP/IP stacks of a host."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_network
from typing import Literal

from ..errors import AlreadyExists, InvalidArgument, NotFound, RuleViolation
from ..events import Event
from ..model import DEFAULT_STACK, Datacenter, Netstack, Route
from ..rules.paths import netstack_path
from ..rules.stacks import valid_stack_name
from . import lookup

IPAddress = IPv4Address | IPv6Address


def add(dc: Datacenter, host: str, name: str) -> list[Event]:
    h = dc.host(host)
    if name in h.netstacks:
        raise AlreadyExists(f"Netstack instance '{name}' is already found")
    if not valid_stack_name(name):
        raise RuleViolation("NS-1", f"Invalid netstack name '{name}': use letters, digits, "
                                    "'-' or '_', at most 32 characters")
    h.netstacks[name] = Netstack()
    return []


def remove(dc: Datacenter, host: str, name: str) -> list[Event]:
    h = dc.host(host)
    lookup.netstack(h, name)
    if name == DEFAULT_STACK:
        raise RuleViolation("NS-5", f"Netstack {DEFAULT_STACK} cannot be removed")
    users = h.vmknics_on(name)
    if users:
        raise RuleViolation("NS-5", f"Netstack '{name}' still has adapters ({', '.join(users)}):"
                                    " remove them first")
    del h.netstacks[name]
    return []


def set_(dc: Datacenter, host: str, name: str, *,
         congestion_control: Literal["newreno", "cubic"] | None = None,
         max_connections: int | None = None, ipv6_enabled: bool | None = None) -> list[Event]:
    stack = lookup.netstack(dc.host(host), name)
    events: list[Event] = []
    if congestion_control is not None:
        stack.congestion_control = congestion_control
    if max_connections is not None:
        if not 1 <= max_connections <= 1000000:
            raise InvalidArgument(f"Max connections {max_connections} out of range 1-1000000")
        if max_connections != stack.max_connections:
            events.append(Event("NS-6", netstack_path(host, name),
                                f"Max connections of {name} set to {max_connections}: "
                                "takes effect at the stack's next start (pending)"))
        stack.max_connections = max_connections
    if ipv6_enabled is not None:
        stack.ipv6_enabled = ipv6_enabled
    return events


def _stack_subnets(dc: Datacenter, host: str, name: str) -> list[IPv4Network | IPv6Network]:
    h = dc.host(host)
    nets: list[IPv4Network | IPv6Network] = []
    for vmk in h.vmknics.values():
        if vmk.netstack != name:
            continue
        if vmk.ipv4.address is not None:
            nets.append(vmk.ipv4.address.network)
        nets.extend(a.network for a in vmk.ipv6.addresses)
    return nets


def _require_reachable(dc: Datacenter, host: str, name: str, gateway: IPAddress) -> None:
    """NS-3, checked when a gateway is configured (as ESXi refuses an unreachable next hop)."""
    stack = lookup.netstack(dc.host(host), name)
    nets = _stack_subnets(dc, host, name)
    nets.extend(r.network for r in stack.routes if r.network.prefixlen > 0)
    if not any(gateway.version == n.version and gateway in n for n in nets):
        raise RuleViolation(
            "NS-3", f"Gateway {gateway} is not in the subnet of any adapter of netstack "
                    f"'{name}': add an adapter in its subnet first")


def route_add(dc: Datacenter, host: str, network: str, gateway: IPAddress,
              netstack: str = DEFAULT_STACK) -> list[Event]:
    stack = lookup.netstack(dc.host(host), netstack)
    _require_reachable(dc, host, netstack, gateway)
    if network == "default":
        if gateway.version == 4:
            assert isinstance(gateway, IPv4Address)
            stack.gateway = gateway
        else:
            assert isinstance(gateway, IPv6Address)
            stack.ipv6_gateway = gateway
        return []
    try:
        net = ip_network(network)
    except ValueError as err:
        raise InvalidArgument(f"Invalid network '{network}': {err}") from None
    if net.version != gateway.version:
        raise InvalidArgument(f"Gateway {gateway} and network {net} are of different IP versions")
    if net.prefixlen == 0:
        return route_add(dc, host, "default", gateway, netstack)
    if any(r.network == net for r in stack.routes):
        raise AlreadyExists(f"Route to {net} already exists in netstack '{netstack}'")
    stack.routes.append(Route(network=net, gateway=gateway))
    return []


def route_remove(dc: Datacenter, host: str, network: str, gateway: IPAddress | None,
                 netstack: str = DEFAULT_STACK, version: int = 4) -> list[Event]:
    stack = lookup.netstack(dc.host(host), netstack)
    if network == "default" or network in ("0.0.0.0/0", "::/0"):
        version = 6 if network == "::/0" else version
        current = stack.gateway if version == 4 else stack.ipv6_gateway
        if current is None or (gateway is not None and current != gateway):
            raise NotFound(f"Default route via {gateway} not found in netstack '{netstack}'")
        if version == 4:
            stack.gateway = None
        else:
            stack.ipv6_gateway = None
        return []
    try:
        net = ip_network(network)
    except ValueError as err:
        raise InvalidArgument(f"Invalid network '{network}': {err}") from None
    for route in stack.routes:
        if route.network == net and (gateway is None or route.gateway == gateway):
            stack.routes.remove(route)
            return []
    raise NotFound(f"Route to {net} not found in netstack '{netstack}'")


def dns_server_add(dc: Datacenter, host: str, server: IPAddress,
                   netstack: str = DEFAULT_STACK) -> list[Event]:
    stack = lookup.netstack(dc.host(host), netstack)
    if server in stack.dns_servers:
        raise AlreadyExists(f"DNS server {server} already exists in netstack '{netstack}'")
    stack.dns_servers.append(server)
    return []


def dns_server_remove(dc: Datacenter, host: str, server: IPAddress,
                      netstack: str = DEFAULT_STACK) -> list[Event]:
    stack = lookup.netstack(dc.host(host), netstack)
    if server not in stack.dns_servers:
        raise NotFound(f"DNS server {server} not found in netstack '{netstack}'")
    stack.dns_servers.remove(server)
    return []


def search_domain_add(dc: Datacenter, host: str, domain: str,
                      netstack: str = DEFAULT_STACK) -> list[Event]:
    stack = lookup.netstack(dc.host(host), netstack)
    if domain in stack.search_domains:
        raise AlreadyExists(f"Search domain {domain} already exists in netstack '{netstack}'")
    stack.search_domains.append(domain)
    return []


def search_domain_remove(dc: Datacenter, host: str, domain: str,
                         netstack: str = DEFAULT_STACK) -> list[Event]:
    stack = lookup.netstack(dc.host(host), netstack)
    if domain not in stack.search_domains:
        raise NotFound(f"Search domain {domain} not found in netstack '{netstack}'")
    stack.search_domains.remove(domain)
    return []

