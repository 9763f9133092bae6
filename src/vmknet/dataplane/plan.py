"""plan(): the ordered kernel operations that turn one KernelState into another (pure).

Deletions come first, children before parents (rules, routes, addresses,
qdiscs, resolvers, links, namespaces); then creations, parents first
(namespaces, sysctls, bridges, veths, link changes, addresses, routes, rules,
qdiscs, resolvers, router filters). A filter goes before its namespace does, so
the inverse of a deletion restores it. Sysctls come right after their namespace, before any link:
`conf.default.*` only applies to links created later. Every step is
invertible (kops), so `apply` can roll a failed plan back exactly.

The comparison leaves to the kernel what the desired state does not fix
(a link's MAC, STP priority or port cost when None; a route's dev when None)
and treats sysctls as a subset: the kernel has values for keys vmknet never sets.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import fields, replace
from ipaddress import ip_address, ip_interface, ip_network

from ..errors import InvalidArgument
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
from .kstate import Address, Filter, KernelState, Link, Qdisc, Resolver, Route

MAIN_TABLE = 254
_KERNEL_CHOSEN = ("mac", "bridge_priority")  # None in desired: whatever the kernel picked

RouteKey = tuple[str, int, str]


# ------------------------------------------------------------ canonical form


def canonical(state: KernelState) -> KernelState:
    """Addresses, networks and MACs in one spelling, so a backend's read compares equal."""
    try:
        return KernelState(
            namespaces=set(state.namespaces),
            links={k: replace(v, mac=v.mac.lower() if v.mac else None)
                   for k, v in state.links.items()},
            addresses={replace(a, cidr=str(ip_interface(a.cidr))) for a in state.addresses},
            routes={_canonical_route(r) for r in state.routes},
            rules={replace(r, src=str(ip_network(r.src, strict=False))) for r in state.rules},
            sysctls=dict(state.sysctls),
            qdiscs=dict(state.qdiscs),
            resolvers={k: replace(v, servers=tuple(str(ip_address(s)) for s in v.servers))
                       for k, v in state.resolvers.items()},
            filters={k: replace(v, refuse=frozenset((i, str(ip_address(a))) for i, a in v.refuse))
                     for k, v in state.filters.items()},
        )
    except ValueError as err:
        raise InvalidArgument(f"kernel state has a malformed address: {err}") from err


def _canonical_route(route: Route) -> Route:
    dst = route.dst
    if dst not in ("default", "default6"):
        net = ip_network(dst, strict=False)
        dst = str(net) if net.prefixlen else ("default" if net.version == 4 else "default6")
    return replace(route, dst=dst,
                   gateway=str(ip_address(route.gateway)) if route.gateway else None,
                   src=str(ip_address(route.src)) if route.src else None)


def route_key(route: Route) -> RouteKey:
    """The kernel identifies a route by table and destination (vmknet sets no metric or tos)."""
    return (route.ns, route.table, route.dst)


def _route_version(route: Route) -> int:
    if route.dst.startswith("default"):
        return 6 if route.dst == "default6" else 4
    return ip_network(route.dst, strict=False).version


def route_matches(current: Route, desired: Route) -> bool:
    return (route_key(current) == route_key(desired) and current.gateway == desired.gateway
            and current.src == desired.src and desired.dev in (None, current.dev))


def settle(current: Link, desired: Link) -> Link:
    """`desired`, with the attributes it leaves to the kernel taken from `current`."""
    kept = {f: getattr(current, f) for f in _KERNEL_CHOSEN if getattr(desired, f) is None}
    # FDB ageing is set when a bridge is made and never compared: the kernel shortens it
    # during every STP topology change, so what a read shows says nothing of the setting.
    kept["ageing"] = current.ageing
    if desired.port_cost is None and desired.master == current.master:
        kept["port_cost"] = current.port_cost
    return replace(desired, **kept)


def _replaced(current: Link, desired: Link | None) -> bool:
    # kind and peer cannot change in place: delete and re-add.
    return desired is None or current.kind != desired.kind or current.peer != desired.peer


# ------------------------------------------------------------------- plan


def plan(current: KernelState, desired: KernelState) -> list[KernelOp]:
    deletions, creations = phases(current, desired)
    return deletions + creations


def phases(current: KernelState, desired: KernelState) -> tuple[list[KernelOp], list[KernelOp]]:
    """The plan in its two halves: what goes (children first), then what comes (parents
    first). A host's agent can run its part of both after the fabric's creations and before
    the fabric's deletions (vmknet.controller.realise)."""
    cur, want = canonical(current), canonical(desired)
    doomed = _doomed_links(cur, want)
    gone_addrs = {a for a in cur.addresses
                  if a not in want.addresses or (a.ns, a.ifname) in doomed}
    gone_routes = _gone_routes(cur, want, doomed, gone_addrs)
    links = dict(cur.links)  # the current links as the deletions leave them
    ops: list[KernelOp] = [DeleteRule(r) for r in sorted(cur.rules - want.rules, key=repr)]
    ops += [DeleteRoute(r) for r in _route_order(gone_routes, reverse=True)]
    ops += [DeleteAddress(a) for a in sorted(gone_addrs, key=repr)]
    ops += [SetQdisc(k[0], k[1], q, None) for k, q in sorted(cur.qdiscs.items())
            if k in doomed or k not in want.qdiscs]
    ops += [SetResolver(ns, r, None) for ns, r in sorted(cur.resolvers.items())
            if ns not in want.resolvers]
    ops += [SetFilter(ns, f, None) for ns, f in sorted(cur.filters.items())
            if ns not in want.filters]
    ops += _delete_links(links, doomed)
    ops += _delete_namespaces(cur, want)
    deletions, ops = ops, []
    ops += [CreateNamespace(ns) for ns in sorted(want.namespaces - cur.namespaces)]
    ops += [SetSysctl(k[0], k[1], cur.sysctls.get(k), v) for k, v in sorted(want.sysctls.items())
            if cur.sysctls.get(k) != v]
    ops += _create_links(links, want)
    ops += [AddAddress(a) for a in sorted(want.addresses - (cur.addresses - gone_addrs),
                                          key=repr)]
    kept = _by_key(cur.routes - gone_routes)
    ops += [AddRoute(r) for r in _route_order(
        {r for r in want.routes if not any(route_matches(c, r)
                                           for c in kept.get(route_key(r), ()))})]
    ops += [AddRule(r) for r in sorted(want.rules - cur.rules, key=repr)]
    ops += _set_qdiscs(cur, want, doomed)
    ops += [SetResolver(ns, cur.resolvers.get(ns), r) for ns, r in sorted(want.resolvers.items())
            if cur.resolvers.get(ns) != r]
    ops += [SetFilter(ns, cur.filters.get(ns), f) for ns, f in sorted(want.filters.items())
            if cur.filters.get(ns) != f]
    return deletions, ops


def _doomed_links(cur: KernelState, want: KernelState) -> set[tuple[str, str]]:
    """Current links to delete; a veth pair goes as a whole."""
    doomed = {k for k, link in cur.links.items() if _replaced(link, want.links.get(k))}
    peers = {cur.links[k].peer for k in doomed}
    return doomed | {p for p in peers if p is not None and p in cur.links}


def _gone_routes(cur: KernelState, want: KernelState, doomed: set[tuple[str, str]],
                 gone_addrs: set[Address]) -> set[Route]:
    """Routes to delete: unwanted ones, and those the kernel would flush under our feet."""
    going_down = {k for k, link in cur.links.items()
                  if link.up and k in want.links and not want.links[k].up}
    gone: set[Route] = set()
    claimed: set[RouteKey] = set()
    wanted_by_key = _by_key(want.routes)
    for route in sorted(cur.routes, key=repr):
        wanted = any(route_matches(route, w) for w in wanted_by_key.get(route_key(route), ()))
        dev = (route.ns, route.dev or "")
        if (not wanted or route_key(route) in claimed or dev in doomed or dev in going_down
                or any(_depends(route, a) for a in gone_addrs)):
            gone.add(route)
        else:
            claimed.add(route_key(route))  # a duplicate (say another metric) still goes
    return gone


def _by_key(routes: Iterable[Route]) -> dict[RouteKey, list[Route]]:
    found: dict[RouteKey, list[Route]] = {}
    for route in routes:
        found.setdefault(route_key(route), []).append(route)
    return found


def _depends(route: Route, address: Address) -> bool:
    """Deleting `address` may make the kernel drop `route` (prefsrc, nexthop, last address)."""
    iface = ip_interface(address.cidr)
    if route.ns != address.ns or _route_version(route) != iface.version:
        return False
    return (route.src == str(iface.ip) or route.dev == address.ifname
            or (route.gateway is not None and ip_address(route.gateway) in iface.network))


def _route_order(routes: Iterable[Route], reverse: bool = False) -> list[Route]:
    """Main table first, and connected routes before the gateways that need them."""
    def key(r: Route) -> tuple[bool, int, bool, str]:
        return (r.table != MAIN_TABLE, r.table, r.gateway is not None, repr(r))
    return sorted(routes, key=key, reverse=reverse)


def _pair(link: Link, links: dict[tuple[str, str], Link]) -> tuple[Link, Link | None]:
    """A veth pair as one op, named from the end whose key sorts first."""
    peer = links.get(link.peer) if link.peer else None
    if peer is not None and peer.key < link.key:
        return peer, link
    return link, peer


def _delete_links(links: dict[tuple[str, str], Link],
                  doomed: set[tuple[str, str]]) -> list[KernelOp]:
    """Unenslave survivors from doomed bridges, delete ports, then bridges; updates `links`."""
    ops: list[KernelOp] = []
    for key, link in sorted(links.items()):
        if key not in doomed and link.master and (link.ns, link.master) in doomed:
            loose = replace(link, master=None, port_cost=None)
            ops.append(ModifyLink(link, loose))
            links[key] = loose
    for bridges in (False, True):
        for key in sorted(doomed):
            found = links.get(key)
            if found is not None and (found.kind == "bridge") == bridges:
                a, b = _pair(found, links)
                ops.append(DeleteLink(a, b))
                links.pop(a.key)
                if b is not None:
                    links.pop(b.key)
    return ops


def _delete_namespaces(cur: KernelState, want: KernelState) -> list[KernelOp]:
    # Re-setting each sysctl to its own value is a no-op forward, but its inverse,
    # replayed after a rolled-back DeleteNamespace, restores the namespace's sysctls.
    gone = sorted(cur.namespaces - want.namespaces)
    pins: list[KernelOp] = [SetSysctl(ns, key, v, v) for (ns, key), v
                            in sorted(cur.sysctls.items()) if ns in gone]
    return pins + [DeleteNamespace(ns) for ns in gone]


def _create_links(links: dict[tuple[str, str], Link], want: KernelState) -> list[KernelOp]:
    ops: list[KernelOp] = []
    new = {k: v for k, v in want.links.items() if k not in links}
    for bridges in (True, False):
        for key in sorted(new):
            link = new[key]
            if (link.kind == "bridge") == bridges and (link.kind != "veth" or _first_end(link)):
                ops.append(AddLink(*_pair(link, want.links)))
    for key in sorted(links, key=lambda k: (links[k].kind != "bridge", k)):
        if key in want.links:
            after = settle(links[key], want.links[key])
            if after != links[key]:
                ops.append(ModifyLink(links[key], after))
    return ops


def _first_end(link: Link) -> bool:
    return link.peer is None or link.key < link.peer


def _set_qdiscs(cur: KernelState, want: KernelState,
                doomed: set[tuple[str, str]]) -> list[KernelOp]:
    ops: list[KernelOp] = []
    for key, qdisc in sorted(want.qdiscs.items()):
        before = None if key in doomed else cur.qdiscs.get(key)
        if before != qdisc:
            ops.append(SetQdisc(key[0], key[1], before, qdisc))
    return ops


# ------------------------------------------------------------- describing


def describe(op: KernelOp) -> str:
    """One line per op, for error details, dry runs and verify differences."""
    name = type(op).__name__
    match op:
        case CreateNamespace(ns) | DeleteNamespace(ns):
            return f"{name} {ns}"
        case AddLink(link, peer) | DeleteLink(link, peer):
            return f"{name} {_link(link)}" + (f" <-> {_link(peer)}" if peer else "")
        case ModifyLink(before, after):
            changes = [f"{f.name}={getattr(after, f.name)!r}" for f in fields(Link)
                       if getattr(before, f.name) != getattr(after, f.name)]
            return f"{name} {before.ns}/{before.name} {' '.join(changes)}"
        case AddAddress(a) | DeleteAddress(a):
            return f"{name} {a.ns}/{a.ifname} {a.cidr}"
        case AddRoute(r) | DeleteRoute(r):
            return f"{name} {r.ns} table {r.table} {r.dst} via {r.gateway} dev {r.dev}"
        case AddRule(r) | DeleteRule(r):
            return f"{name} {r.ns} {r.priority}: from {r.src} lookup {r.table}"
        case SetSysctl(ns, key, before, after):
            return f"{name} {ns} {key}={after} (was {before})"
        case SetQdisc(ns, ifname, before, after):
            return f"{name} {ns}/{ifname} {_rate(before)} -> {_rate(after)}"
        case SetResolver(ns, before, after):
            return f"{name} {ns} {_resolver(before)} -> {_resolver(after)}"
        case SetFilter(ns, before, after):
            return f"{name} {ns} nftables {filter_change(before, after)}"
    return repr(op)


def _link(link: Link) -> str:
    master = f" master {link.master}" if link.master else ""
    return f"{link.ns}/{link.name} ({link.kind} mtu {link.mtu}{master})"


def _rate(qdisc: Qdisc | None) -> str:
    return f"tbf {qdisc.rate_mbit}mbit" if qdisc is not None else "none"


def _resolver(resolver: Resolver | None) -> str:
    return ",".join(resolver.servers) if resolver else "none"


def filter_change(before: Filter | None, after: Filter | None) -> str:
    """What a ruleset change adds and removes, e.g. `+forward r0>r2 -drift 'policy accept'`."""
    if after is None:
        return "flushed" if before is not None else "none"
    old = before or Filter(after.ns)
    words = [f"{sign}forward {i}>{o}" for sign, pairs in (("+", after.forward - old.forward),
                                                           ("-", old.forward - after.forward))
             for i, o in sorted(pairs)]
    words += [f"{sign}refuse {i}:{a}" for sign, pairs in (("+", after.refuse - old.refuse),
                                                          ("-", old.refuse - after.refuse))
              for i, a in sorted(pairs)]
    words += [f"-drift {d!r}" for d in old.drift if d not in after.drift]
    if before is None:
        return f"new: {len(after.forward)} forward, {len(after.refuse)} refuse"
    return " ".join(words[:8]) + (f" (+{len(words) - 8} more)" if len(words) > 8 else "")


def differences(current: KernelState, desired: KernelState) -> list[str]:
    """What the kernel still lacks: the plan that would fix it, described."""
    return [describe(op) for op in plan(current, desired)]


__all__ = ["canonical", "describe", "differences", "filter_change", "plan", "route_key",
           "route_matches", "settle"]
