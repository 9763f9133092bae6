"""Read the kernel state below a namespace prefix into a `KernelState`.

One helper thread tours all namespaces once (setns per namespace), opening an
rtnetlink socket in each and reading the managed sysctls while it is there;
the dumps (links, addresses, routes, rules, qdiscs) then run on those sockets
from the calling thread, parsed by `rtdump` (not pyroute2: ~20x faster).
A veth's peer is found from IFLA_LINK (the peer's ifindex) and
IFLA_LINK_NETNSID (the peer namespace's id as seen from this one):
candidates are namespaces holding a veth with that ifindex pointing back, and
one RTM_GETNSID per candidate (cached per namespace pair) confirms which
namespace carries that id.

What is reported mirrors `KernelState`: only veth/bridge/ifb links; no IPv6
link-local or loopback addresses; only unicast routes of table main (254) and
tables 100-999 that the kernel did not make itself (proto kernel/ra/redirect,
link-local, multicast); rules with priority 1..32765; root tbf qdiscs.
`bridge_priority` is reported for STP bridges (or when not the default 32768),
`port_cost` for ports of STP bridges; a link's MAC is always reported.
"""

from __future__ import annotations

import ipaddress
import os
import socket
from dataclasses import dataclass, field
from typing import cast

from .. import naming
from ..kstate import Address, Filter, KernelState, Link, LinkKind, Qdisc, Resolver, Route, Rule
from . import netns, nft, resolver, sysctl, tc
from .nl import DEFAULT_BRIDGE_PRIORITY, TC_H_ROOT
from .routes import PROTO_GATEWAY_ONLY
from .rtdump import Dumper, RawAddr, RawLink, RawQdisc, RawRoute, RawRule

KINDS = ("veth", "bridge", "ifb")
KERNEL_PROTOS = {1, 2, 9}  # redirect, kernel, ra
RTN_UNICAST = 1
_LINK_LOCAL6 = ipaddress.ip_network("fe80::/10")


@dataclass
class _Dump:
    links: list[RawLink] = field(default_factory=list)
    addrs: list[RawAddr] = field(default_factory=list)
    routes: list[RawRoute] = field(default_factory=list)
    rules: list[RawRule] = field(default_factory=list)
    qdiscs: list[RawQdisc] = field(default_factory=list)
    sysctls: dict[str, str] = field(default_factory=dict)
    resolver: Resolver | None = None

    def by_index(self) -> dict[int, RawLink]:
        return {link.index: link for link in self.links}


def _enter() -> tuple[int, dict[str, str]]:
    """Inside one namespace: an rtnetlink socket, and the sysctls."""
    return (netns.netlink_socket_here(), sysctl.read_here())


def read_state(prefix: str) -> KernelState:
    fds: dict[str, int] = {}
    for ns in netns.listed(prefix):
        try:
            fds[ns] = netns.open_fd(ns)
        except FileNotFoundError:  # removed meanwhile
            continue
    socks: dict[str, Dumper] = {}
    try:
        entered = netns.visit(fds, _enter)
        for ns, (sock, _) in entered.items():
            socks[ns] = Dumper(sock)
        dumps = {ns: _dump(d, entered[ns][1], ns) for ns, d in socks.items()}
        state = _build(dumps, socks, fds)
        state.filters = _filters(dumps)
        return state
    finally:
        for d in socks.values():
            d.close()
        for fd in fds.values():
            os.close(fd)


def _dump(nlk: Dumper, sysctls: dict[str, str], ns: str) -> _Dump:
    return _Dump(nlk.links(), nlk.addrs(), nlk.routes(), nlk.rules(), nlk.qdiscs(),
                 sysctls, resolver.read(ns))


class _Peers:
    """Maps (namespace, netnsid) to the namespace name, asking the kernel only to confirm."""

    def __init__(self, dumps: dict[str, _Dump], queries: dict[str, Dumper],
                 fds: dict[str, int]) -> None:
        self.dumps, self.queries, self.fds = dumps, queries, fds
        self.index = {ns: d.by_index() for ns, d in dumps.items()}
        self.names: dict[tuple[str, int], str] = {}
        self.asked: dict[tuple[str, str], int | None] = {}

    def peer(self, ns: str, link: RawLink) -> tuple[str, str] | None:
        if link.link is None:
            return None
        if link.link_netnsid is None:  # both ends in this namespace
            other = self.index[ns].get(link.link)
            return (ns, other.name) if other is not None else None
        key = (ns, link.link_netnsid)
        if key not in self.names:
            for cand in self._candidates(ns, link):
                if self._nsid(ns, cand) == link.link_netnsid:
                    self.names[key] = cand
                    break
        where = self.names.get(key)
        if where is None:
            return None  # the peer is outside the prefix
        other = self.index[where].get(link.link)
        return (where, other.name) if other is not None else None

    def _candidates(self, ns: str, link: RawLink) -> list[str]:
        out = []
        for cand, index in self.index.items():
            other = index.get(link.link) if link.link is not None else None
            if (cand != ns and other is not None and other.kind == "veth"
                    and other.link == link.index and other.link_netnsid is not None):
                out.append(cand)
        return out

    def _nsid(self, ns: str, cand: str) -> int | None:
        if (ns, cand) not in self.asked:
            self.asked[(ns, cand)] = self.queries[ns].nsid_of(self.fds[cand])
        return self.asked[(ns, cand)]


def _build(dumps: dict[str, _Dump], queries: dict[str, Dumper],
           fds: dict[str, int]) -> KernelState:
    state = KernelState(namespaces=set(dumps))
    peers = _Peers(dumps, queries, fds)
    for ns, d in dumps.items():
        index = peers.index[ns]
        names = {i: link.name for i, link in index.items()}
        for raw in d.links:
            if raw.kind in KINDS:
                state.add_link(_link(ns, raw, index, peers))
        state.addresses |= {a for a in (_address(ns, r, names) for r in d.addrs) if a}
        state.routes |= {r for r in (_route(ns, r, names) for r in d.routes) if r}
        state.rules |= {r for r in (_rule(ns, r) for r in d.rules) if r}
        for key, value in d.sysctls.items():
            state.sysctls[(ns, key)] = value
        for q in d.qdiscs:
            if q.kind == "tbf" and q.parent == TC_H_ROOT and q.rate is not None:
                state.qdiscs[(ns, names[q.index])] = Qdisc(ns, names[q.index], tc.to_mbit(q.rate))
        if d.resolver is not None:
            state.resolvers[ns] = d.resolver
    return state


def _filters(dumps: dict[str, _Dump]) -> dict[str, Filter]:
    """nftables rulesets of router namespaces: the only ones vmknet filters in (SEC-6)."""
    marker = f".{naming.ROUTER}."
    found = {ns: nft.read(ns) for ns in sorted(dumps) if marker in ns}
    return {ns: f for ns, f in found.items() if f is not None}


def _link(ns: str, raw: RawLink, index: dict[int, RawLink], peers: _Peers) -> Link:
    master = index.get(raw.master) if raw.master else None
    stp = bool(raw.stp_state)
    priority = raw.priority if raw.kind == "bridge" and (
        stp or raw.priority != DEFAULT_BRIDGE_PRIORITY) else None
    cost = raw.port_cost if master is not None and master.stp_state else None
    return Link(
        ns=ns, name=raw.name, kind=cast(LinkKind, raw.kind),  # one of KINDS (caller)
        peer=peers.peer(ns, raw) if raw.kind == "veth" else None,
        master=master.name if master is not None else None, mtu=raw.mtu, mac=raw.mac,
        up=raw.up, stp=stp, bridge_priority=priority, port_cost=cost,
    )


def _address(ns: str, raw: RawAddr, names: dict[int, str]) -> Address | None:
    ip = ipaddress.ip_address(raw.address)
    if ip.is_loopback or (ip.version == 6 and ip in _LINK_LOCAL6) or raw.index not in names:
        return None
    return Address(ns, names[raw.index], f"{raw.address}/{raw.prefixlen}")


def _route(ns: str, raw: RawRoute, names: dict[int, str]) -> Route | None:
    if (raw.type != RTN_UNICAST or raw.proto in KERNEL_PROTOS or raw.multipath
            or not (raw.table == 254 or 100 <= raw.table <= 999)):
        return None
    if raw.dst_len == 0:
        dst = "default" if raw.family == socket.AF_INET else "default6"
    else:
        net = ipaddress.ip_network(f"{raw.dst}/{raw.dst_len}", strict=False)
        if net.is_multicast or net.is_link_local:
            return None
        dst = str(net)
    implicit = raw.proto == PROTO_GATEWAY_ONLY and raw.gateway is not None
    dev = None if implicit or raw.oif is None else names.get(raw.oif)
    return Route(ns, dst, raw.gateway, dev, raw.table, raw.prefsrc)


def _rule(ns: str, raw: RawRule) -> Rule | None:
    if not 1 <= raw.priority <= 32765:
        return None
    if raw.src is None:
        src = "0.0.0.0/0" if raw.family == socket.AF_INET else "::/0"
    else:
        src = f"{raw.src}/{raw.src_len}"
    return Rule(ns, raw.priority, src, raw.table)

