"""Addresses, routes and policy rules.

IPv6 addresses are added with IFA_F_NODAD, so they are usable at once (no
duplicate address detection delay in a lab whose addresses are planned).

Routes carry a vmknet protocol number so that `read` can give back exactly the
`Route` that was added: the kernel always reports an output device, even for a
route given only a gateway, so ``PROTO_GATEWAY_ONLY`` marks "dev was left to
the kernel" and `read` reports ``dev=None`` for it. Routes without a gateway
get scope link, as `ip route` gives them.
"""

from __future__ import annotations

import ipaddress
import socket

from ..kops import AddAddress, AddRoute, AddRule, DeleteAddress, DeleteRoute, DeleteRule
from ..kstate import Route
from . import netns
from .nl import RT_SCOPE_LINK, RT_SCOPE_NOWHERE, RT_SCOPE_UNIVERSE

PROTO_VMKNET = 118  # a route vmknet added with its device (or without gateway)
PROTO_GATEWAY_ONLY = 119  # a route vmknet added with a gateway and no device


def _family(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> int:
    return socket.AF_INET if ip.version == 4 else socket.AF_INET6


def add_address(op: AddAddress) -> None:
    _address("add", op.address.ns, op.address.ifname, op.address.cidr)


def delete_address(op: DeleteAddress) -> None:
    _address("del", op.address.ns, op.address.ifname, op.address.cidr)


def _address(cmd: str, ns: str, ifname: str, cidr: str) -> None:
    iface = ipaddress.ip_interface(cidr)
    with netns.open_netlink(ns) as nlk:
        nlk.addr(cmd, ifname, str(iface.ip), iface.network.prefixlen, _family(iface.ip))


def _dst(route: Route) -> tuple[int, str, int]:
    """(family, address, prefix length) of a route's destination."""
    if route.dst == "default":
        return socket.AF_INET, "0.0.0.0", 0
    if route.dst == "default6":
        return socket.AF_INET6, "::", 0
    net = ipaddress.ip_network(route.dst, strict=False)
    return _family(net.network_address), str(net.network_address), net.prefixlen


def _spec(route: Route, oif: int | None, adding: bool) -> dict[str, object]:
    family, dst, dst_len = _dst(route)
    spec: dict[str, object] = {"family": family, "dst": dst, "dst_len": dst_len,
                               "table": route.table}
    if route.gateway is not None:
        spec["gateway"] = route.gateway
    if oif is not None:
        spec["oif"] = oif
    if adding:
        spec["proto"] = PROTO_GATEWAY_ONLY if route.dev is None and route.gateway else PROTO_VMKNET
        spec["scope"] = RT_SCOPE_UNIVERSE if route.gateway else RT_SCOPE_LINK
        if route.src is not None:
            spec["prefsrc"] = route.src
    else:
        spec["scope"] = RT_SCOPE_NOWHERE  # delete matches any scope, as `ip route del` does
    return spec


def add_route(op: AddRoute) -> None:
    _route("add", op.route)


def delete_route(op: DeleteRoute) -> None:
    _route("del", op.route)


def _route(cmd: str, route: Route) -> None:
    with netns.open_netlink(route.ns) as nlk:
        oif = nlk.index(route.dev) if route.dev is not None else None
        nlk.route(cmd, **_spec(route, oif, cmd == "add"))


def add_rule(op: AddRule) -> None:
    _rule("add", op.rule.ns, op.rule.priority, op.rule.src, op.rule.table)


def delete_rule(op: DeleteRule) -> None:
    _rule("del", op.rule.ns, op.rule.priority, op.rule.src, op.rule.table)


def _rule(cmd: str, ns: str, priority: int, src: str, table: int) -> None:
    net = ipaddress.ip_network(src, strict=False)
    spec: dict[str, object] = {"family": _family(net.network_address), "priority": priority,
                               "table": table}
    if net.prefixlen:
        spec.update(src=str(net.network_address), src_len=net.prefixlen)
    with netns.open_netlink(ns) as nlk:
        nlk.rule(cmd, **spec)
