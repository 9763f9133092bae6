"""MemoryBackend: the in-memory twin of the kernel, with the kernel's preconditions.

It refuses what the kernel refuses (EEXIST, ENODEV, ENETUNREACH, a link in a
missing namespace, a master that is not a bridge in the same namespace, a
name longer than 15 characters) and has the kernel's side effects that
matter to rollback: deleting a link drops its addresses, routes and qdisc;
deleting a bridge frees its ports; deleting an address or downing a link
drops the routes that depended on it. Every op is checked in full before the
state changes, so a refused op leaves the state as it was (the Backend contract).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import replace
from ipaddress import IPv4Address, IPv6Address, ip_address, ip_interface, ip_network
from typing import Any

from ..errors import DataplaneError
from . import naming
from .kops import (
    AddAddress,
    AddLink,
    AddRoute,
    AddRule,
    CreateNamespace,
    DeleteAddress,
    DeleteLink,
    DeleteNamespace,
    DeleteRoute,
    DeleteRule,
    KernelOp,
    ModifyLink,
    SetFilter,
    SetQdisc,
    SetResolver,
    SetSysctl,
)
from .kstate import KernelState, Link, Route
from .plan import canonical, describe, route_key

DEFAULT_PORT_COST = 100  # what the kernel gives a veth port (no link speed)
DEFAULT_BRIDGE_PRIORITY = 32768


class MemoryBackend:
    """A Backend over a KernelState held in memory; `executed` records every op that succeeded."""

    name = "memory"

    def __init__(self, state: KernelState | None = None) -> None:
        self.state = canonical(state) if state is not None else KernelState()
        self.executed: list[KernelOp] = []

    def read(self, prefix: str) -> KernelState:
        """A copy of everything in the namespaces below `prefix` (objects are immutable)."""
        s = self.state

        def mine(ns: str) -> bool:
            return ns.startswith(prefix)

        return KernelState(
            namespaces={ns for ns in s.namespaces if mine(ns)},
            links={k: v for k, v in s.links.items() if mine(k[0])},
            addresses={a for a in s.addresses if mine(a.ns)},
            routes={r for r in s.routes if mine(r.ns)},
            rules={r for r in s.rules if mine(r.ns)},
            sysctls={k: v for k, v in s.sysctls.items() if mine(k[0])},
            qdiscs={k: v for k, v in s.qdiscs.items() if mine(k[0])},
            resolvers={k: v for k, v in s.resolvers.items() if mine(k)},
            filters={k: v for k, v in s.filters.items() if mine(k)},
        )

    def execute(self, op: KernelOp) -> None:
        _HANDLERS[type(op)](self, op)
        self.executed.append(op)

    # ------------------------------------------------------------ checks

    def _fail(self, errno: str, message: str, op: KernelOp) -> DataplaneError:
        return DataplaneError(f"{message} ({errno})", errno=errno, op=describe(op))

    def _need_ns(self, ns: str, op: KernelOp) -> None:
        if ns not in self.state.namespaces:
            raise self._fail("ENOENT", f"namespace {ns} does not exist", op)

    def _need_link(self, key: tuple[str, str], op: KernelOp) -> Link:
        self._need_ns(key[0], op)
        link = self.state.links.get(key)
        if link is None:
            raise self._fail("ENODEV", f"no device {key[1]} in {key[0]}", op)
        return link

    def _check_link(self, link: Link, op: KernelOp, *, new: bool) -> None:
        self._need_ns(link.ns, op)
        if not naming.fits(link.name):
            raise self._fail("EINVAL", f"invalid interface name {link.name!r}", op)
        if new and link.key in self.state.links:
            raise self._fail("EEXIST", f"device {link.name} exists in {link.ns}", op)
        if not 68 <= link.mtu <= 65535:
            raise self._fail("EINVAL", f"MTU {link.mtu} out of range", op)
        if link.master is not None:
            master = self.state.links.get((link.ns, link.master))
            if master is None:
                raise self._fail("ENODEV", f"master {link.master} not in {link.ns}", op)
            if master.kind != "bridge" or master.key == link.key:
                raise self._fail("EOPNOTSUPP", f"{link.master} is not a bridge", op)

    def _materialise(self, link: Link, current: Link | None = None) -> Link:
        """Fill in what the kernel chooses: a MAC, STP priority, a port's cost."""
        mac = link.mac or (current.mac if current else None) or _kernel_mac(link)
        priority = link.bridge_priority
        if link.kind == "bridge" and priority is None:
            priority = current.bridge_priority if current else DEFAULT_BRIDGE_PRIORITY
        cost = link.port_cost
        if link.master is None:
            cost = None
        elif cost is None:
            same = current is not None and current.master == link.master
            cost = current.port_cost if same and current else DEFAULT_PORT_COST
        return replace(link, mac=mac.lower(), bridge_priority=priority, port_cost=cost)

    # --------------------------------------------------------- namespaces

    def _create_namespace(self, op: CreateNamespace) -> None:
        if op.ns in self.state.namespaces:
            raise self._fail("EEXIST", f"namespace {op.ns} exists", op)
        if not op.ns or "/" in op.ns or len(op.ns) > 255:
            raise self._fail("EINVAL", f"invalid namespace name {op.ns!r}", op)
        self.state.namespaces.add(op.ns)

    def _delete_namespace(self, op: DeleteNamespace) -> None:
        self._need_ns(op.ns, op)
        if any(k[0] == op.ns for k in self.state.links) or op.ns in self.state.resolvers:
            raise self._fail("EBUSY", f"namespace {op.ns} is not empty", op)
        self.state.namespaces.discard(op.ns)
        self.state.sysctls = {k: v for k, v in self.state.sysctls.items() if k[0] != op.ns}
        self.state.filters.pop(op.ns, None)  # the ruleset goes with its namespace

    def _set_filter(self, op: SetFilter) -> None:
        self._need_ns(op.ns, op)
        if op.after is None:
            self.state.filters.pop(op.ns, None)  # `nft flush ruleset` of an empty one is fine
            return
        for _, address in op.after.refuse:
            _parse(self, ip_address, address, op)
        self.state.filters[op.ns] = replace(op.after, drift=())  # drift is never written

    def _set_sysctl(self, op: SetSysctl) -> None:
        self._need_ns(op.ns, op)
        if not op.key.startswith("net."):
            raise self._fail("ENOENT", f"no sysctl {op.key}", op)
        self.state.sysctls[(op.ns, op.key)] = op.after

    def _set_resolver(self, op: SetResolver) -> None:
        self._need_ns(op.ns, op)
        if op.after is None:
            if self.state.resolvers.pop(op.ns, None) is None:
                raise self._fail("ENOENT", f"no resolv.conf for {op.ns}", op)
        else:
            self.state.resolvers[op.ns] = op.after

    # -------------------------------------------------------------- links

    def _add_link(self, op: AddLink) -> None:
        link, peer = op.link, op.peer_link
        self._check_link(link, op, new=True)
        if link.kind == "veth":
            if peer is None or link.peer != peer.key or peer.peer != link.key or peer == link:
                raise self._fail("EINVAL", f"veth {link.name} needs its peer, naming it", op)
            self._check_link(peer, op, new=True)
        elif peer is not None or link.peer is not None:
            raise self._fail("EINVAL", f"a {link.kind} has no peer", op)
        for end in (link, peer) if peer else (link,):
            self.state.links[end.key] = self._materialise(end)

    def _delete_link(self, op: DeleteLink) -> None:
        link = self._need_link(op.link.key, op)
        gone = {link.key} | ({link.peer} if link.peer else set())
        s = self.state
        s.links = {k: v for k, v in s.links.items() if k not in gone}
        for key, port in list(s.links.items()):
            if port.master and (port.ns, port.master) in gone:  # the kernel frees the ports
                s.links[key] = replace(port, master=None, port_cost=None)
        s.addresses = {a for a in s.addresses if (a.ns, a.ifname) not in gone}
        s.routes = {r for r in s.routes if (r.ns, r.dev) not in gone}
        s.qdiscs = {k: v for k, v in s.qdiscs.items() if k not in gone}

    def _modify_link(self, op: ModifyLink) -> None:
        current = self._need_link(op.before.key, op)
        after = op.after
        if after.key != current.key or after.kind != current.kind or after.peer != current.peer:
            raise self._fail("EOPNOTSUPP", "name, kind and peer of a link are fixed", op)
        self._check_link(after, op, new=False)
        if current.up and not after.up:  # the kernel flushes IPv4 routes via a downed link
            self.state.routes = {r for r in self.state.routes
                                 if (r.ns, r.dev) != after.key or _version(r) == 6}
        self.state.links[after.key] = self._materialise(after, current)

    def _set_qdisc(self, op: SetQdisc) -> None:
        key = (op.ns, op.ifname)
        self._need_link(key, op)
        if op.after is None:
            if self.state.qdiscs.pop(key, None) is None:
                raise self._fail("ENOENT", f"no qdisc on {op.ifname}", op)
        elif op.after.rate_mbit <= 0:
            raise self._fail("EINVAL", "a tbf rate must be positive", op)
        else:
            self.state.qdiscs[key] = op.after

    # -------------------------------------------------- addresses, routes

    def _add_address(self, op: AddAddress) -> None:
        a = op.address
        self._need_link((a.ns, a.ifname), op)
        iface = _parse(self, ip_interface, a.cidr, op)
        if iface.version == 6 and self.state.sysctls.get(
                (a.ns, "net.ipv6.conf.all.disable_ipv6")) == "1":
            raise self._fail("EACCES", f"IPv6 is disabled in {a.ns}", op)
        address = replace(a, cidr=str(iface))  # stored canonical: a set lookup finds it
        if address in self.state.addresses:
            raise self._fail("EEXIST", f"{a.cidr} already on {a.ifname}", op)
        self.state.addresses.add(address)

    def _delete_address(self, op: DeleteAddress) -> None:
        a = op.address
        if a not in self.state.addresses:
            raise self._fail("EADDRNOTAVAIL", f"{a.cidr} is not on {a.ifname} in {a.ns}", op)
        self.state.addresses.discard(a)
        iface = ip_interface(a.cidr)
        last = not any((b.ns, b.ifname) == (a.ns, a.ifname)
                       and ip_interface(b.cidr).version == iface.version
                       for b in self.state.addresses)
        # The kernel drops routes with this prefsrc, and all routes via a device that
        # lost its last address of the family.
        self.state.routes = {r for r in self.state.routes if not (
            r.ns == a.ns and (r.src == str(iface.ip)
                              or (last and r.dev == a.ifname and _version(r) == iface.version)))}

    def _add_route(self, op: AddRoute) -> None:
        r = op.route
        self._need_ns(r.ns, op)
        if any(route_key(x) == route_key(r) for x in self.state.routes):
            raise self._fail("EEXIST", f"route {r.dst} exists in table {r.table}", op)
        if r.dev is not None and not self._need_link((r.ns, r.dev), op).up:
            raise self._fail("ENETDOWN", f"{r.dev} is down", op)
        if r.gateway is None and r.dev is None:
            raise self._fail("EINVAL", "a route needs a gateway or a device", op)
        if r.gateway is not None and not self._onlink(r, _parse(self, ip_address, r.gateway, op)):
            raise self._fail("ENETUNREACH", f"gateway {r.gateway} is not on-link", op)
        if r.src is not None and not any(
                a.ns == r.ns and str(ip_interface(a.cidr).ip) == r.src
                for a in self.state.addresses):
            raise self._fail("EINVAL", f"invalid prefsrc {r.src}", op)
        self.state.routes.add(r)

    def _onlink(self, r: Route, gateway: IPv4Address | IPv6Address) -> bool:
        if gateway.version != _version(r):
            return False
        for a in self.state.addresses:
            if a.ns != r.ns or r.dev not in (None, a.ifname):
                continue  # cheap tests first: parsing every address is what costs
            if gateway in ip_interface(a.cidr).network:
                return True
        return any(x.ns == r.ns and x.gateway is None and r.dev in (None, x.dev)
                   and x.table in (r.table, 254) and not x.dst.startswith("default")
                   and gateway in ip_network(x.dst) for x in self.state.routes)

    def _delete_route(self, op: DeleteRoute) -> None:
        found = [x for x in self.state.routes if route_key(x) == route_key(op.route)]
        if not found:
            raise self._fail("ESRCH", f"no route {op.route.dst} in table {op.route.table}", op)
        self.state.routes.discard(found[0])

    def _add_rule(self, op: AddRule) -> None:
        self._need_ns(op.rule.ns, op)
        _parse(self, ip_network, op.rule.src, op)
        if op.rule in self.state.rules:
            raise self._fail("EEXIST", f"rule {op.rule.priority} exists", op)
        self.state.rules.add(op.rule)

    def _delete_rule(self, op: DeleteRule) -> None:
        if op.rule not in self.state.rules:
            raise self._fail("ENOENT", f"no rule {op.rule.priority} in {op.rule.ns}", op)
        self.state.rules.discard(op.rule)


def _version(route: Route) -> int:
    if route.dst.startswith("default"):
        return 6 if route.dst == "default6" else 4
    return ip_network(route.dst, strict=False).version


def _parse(backend: MemoryBackend, parser: Callable[[str], Any], text: str,
           op: KernelOp) -> Any:
    try:
        return parser(text)
    except ValueError:
        raise backend._fail("EINVAL", f"invalid address {text!r}", op) from None


def _kernel_mac(link: Link) -> str:
    """Like the kernel's random MAC (locally administered, unicast), but reproducible."""
    raw = bytearray(hashlib.sha256(f"{link.ns}/{link.name}".encode()).digest()[:6])
    raw[0] = (raw[0] & 0xFE) | 0x02
    return ":".join(f"{b:02x}" for b in raw)


_HANDLERS: dict[type, Callable[[MemoryBackend, Any], None]] = {
    CreateNamespace: MemoryBackend._create_namespace,
    DeleteNamespace: MemoryBackend._delete_namespace,
    AddLink: MemoryBackend._add_link,
    DeleteLink: MemoryBackend._delete_link,
    ModifyLink: MemoryBackend._modify_link,
    AddAddress: MemoryBackend._add_address,
    DeleteAddress: MemoryBackend._delete_address,
    AddRoute: MemoryBackend._add_route,
    DeleteRoute: MemoryBackend._delete_route,
    AddRule: MemoryBackend._add_rule,
    DeleteRule: MemoryBackend._delete_rule,
    SetSysctl: MemoryBackend._set_sysctl,
    SetQdisc: MemoryBackend._set_qdisc,
    SetResolver: MemoryBackend._set_resolver,
    SetFilter: MemoryBackend._set_filter,
}
