"""The baseline of bench_lab.py: a plain `ip`/`tc`/`sysctl` shell script building a KernelState.

    up = script_up(state)      # run with `bash -e`: builds exactly what apply(state) builds
    down = script_down(state)  # `ip netns del` per namespace (and the resolv.conf dirs)

The script is generated from the same `KernelState` that `render()` produced,
so both sides build the same namespaces, veths, bridges (STP, priority,
timers), port costs, MACs, MTUs, admin states, addresses, routes (with the
protocol numbers vmknet's read understands), rules, tbf qdiscs, sysctls and
resolv.conf files. It is written the way a person would write it: one `ip`
command per object and step, one `ip netns exec ... sysctl -w k=v ...` per
namespace (not one per key), in the order `plan()` uses: namespaces,
sysctls, bridges, veths, masters / port costs / admin state, addresses,
routes, rules, qdiscs, resolvers. Pure: no I/O here.
"""

from __future__ import annotations

import shlex
from collections.abc import Iterable
from ipaddress import ip_interface, ip_network

from vmknet.dataplane.kstate import KernelState, Link, Route, Rule
from vmknet.dataplane.linux import resolver, tc
from vmknet.dataplane.linux.netns import ETC_NETNS
from vmknet.dataplane.linux.nl import FORWARD_DELAY, HELLO_TIME, MAX_AGE
from vmknet.dataplane.linux.routes import PROTO_GATEWAY_ONLY, PROTO_VMKNET
from vmknet.dataplane.plan import MAIN_TABLE

DEFAULT_BRIDGE_PRIORITY = 32768
DEFAULT_AGEING_S = 300  # the kernel's FDB ageing time


def q(word: str | int) -> str:
    return shlex.quote(str(word))


def _ip(ns: str, *words: str | int, family: int | None = None) -> str:
    fam = ["-6"] if family == 6 else []
    return " ".join(["ip", *fam, "-n", q(ns), *(q(w) for w in words)])


def _lladdr(link: Link) -> list[str]:
    return ["address", link.mac] if link.mac else []


def _bridge(link: Link) -> str:
    priority = DEFAULT_BRIDGE_PRIORITY if link.bridge_priority is None else link.bridge_priority
    ageing = getattr(link, "ageing", None)  # FDB ageing in seconds, where the state has it
    return _ip(link.ns, "link", "add", link.name, *_lladdr(link), "mtu", link.mtu,
               "type", "bridge", "stp_state", 1 if link.stp else 0, "priority", priority,
               "forward_delay", FORWARD_DELAY, "hello_time", HELLO_TIME, "max_age", MAX_AGE,
               "ageing_time", (DEFAULT_AGEING_S if ageing is None else ageing) * 100)


def _veth(link: Link, peer: Link) -> str:
    words: list[str | int] = ["link", "add", link.name, *_lladdr(link), "mtu", link.mtu,
                              "type", "veth", "peer", "name", peer.name, *_lladdr(peer),
                              "mtu", peer.mtu]
    if peer.ns != link.ns:
        words += ["netns", peer.ns]
    return _ip(link.ns, *words)


def _attach(link: Link) -> list[str]:
    """Master, port cost, then admin state (as the Linux backend does it)."""
    out = []
    if link.master is not None:
        out.append(_ip(link.ns, "link", "set", link.name, "master", link.master))
    cost = (["type", "bridge_slave", "cost", str(link.port_cost)]
            if link.master is not None and link.port_cost is not None else [])
    up = ["up"] if link.up else []
    if cost or up:  # the kernel applies slave data before the admin state: cost, then up
        out.append(_ip(link.ns, "link", "set", link.name, *up, *cost))
    return out


def _links(state: KernelState) -> list[str]:
    links = state.links
    bridges = [link for _, link in sorted(links.items()) if link.kind == "bridge"]
    out = [_bridge(b) for b in bridges]
    created: list[Link] = list(bridges)
    for key, link in sorted(links.items()):
        if link.kind == "veth":
            peer = links.get(link.peer) if link.peer else None
            if peer is None:
                raise ValueError(f"veth {key} has no peer in the state")
            if key < peer.key:
                out.append(_veth(link, peer))
                created += [link, peer]
        elif link.kind != "bridge":
            out.append(_ip(link.ns, "link", "add", link.name, *_lladdr(link), "mtu", link.mtu,
                           "type", link.kind))
            created.append(link)
    # Bridges first (their ports' MTUs settle them), then every port.
    for link in sorted(created, key=lambda lk: (lk.kind != "bridge", lk.key)):
        out += _attach(link)
    return out


def _family(text: str) -> int:
    return ip_network(text, strict=False).version


def _route(r: Route) -> str:
    family = 6 if r.dst == "default6" or (r.dst != "default" and _family(r.dst) == 6) else 4
    words: list[str | int] = ["route", "add", "default" if r.dst.startswith("default") else r.dst]
    if r.gateway is not None:
        words += ["via", r.gateway]
    if r.dev is not None:
        words += ["dev", r.dev]
    if r.table != MAIN_TABLE:
        words += ["table", r.table]
    if r.src is not None:
        words += ["src", r.src]
    proto = PROTO_GATEWAY_ONLY if r.dev is None and r.gateway else PROTO_VMKNET
    words += ["proto", proto, "scope", "global" if r.gateway else "link"]
    return _ip(r.ns, *words, family=family)


def _route_order(r: Route) -> tuple[bool, int, bool, str]:
    return (r.table != MAIN_TABLE, r.table, r.gateway is not None, repr(r))


def _rule(r: Rule) -> str:
    return _ip(r.ns, "rule", "add", "pref", r.priority, "from", r.src, "table", r.table,
               family=_family(r.src))


def _sysctls(state: KernelState) -> list[str]:
    by_ns: dict[str, list[str]] = {}
    for (ns, key), value in sorted(state.sysctls.items()):
        by_ns.setdefault(ns, []).append(f"{key}={value}")
    return [" ".join(["ip", "netns", "exec", q(ns), "sysctl", "-q", "-w", *map(q, pairs)])
            for ns, pairs in sorted(by_ns.items())]


def _resolvers(state: KernelState) -> list[str]:
    out = []
    for ns, res in sorted(state.resolvers.items()):
        path = f"{ETC_NETNS}/{ns}"
        lines = resolver.render(res).splitlines()
        out += [f"mkdir -p {q(path)}",
                f"printf '%s\\n' {' '.join(map(q, lines))} > {q(path + '/resolv.conf')}"]
    return out


def script_up(state: KernelState) -> str:
    """`bash -e` script creating everything in `state` in empty namespaces."""
    lines = ["# generated by bench/ip_script.py from render()'s KernelState"]
    for ns in sorted(state.namespaces):
        lines += [f"ip netns add {q(ns)}", _ip(ns, "link", "set", "lo", "up")]
    lines += _sysctls(state)
    lines += _links(state)
    for a in sorted(state.addresses, key=repr):
        iface = ip_interface(a.cidr)
        nodad = ["nodad"] if iface.version == 6 else []
        lines.append(_ip(a.ns, "addr", "add", a.cidr, "dev", a.ifname, *nodad,
                         family=iface.version))
    lines += [_route(r) for r in sorted(state.routes, key=_route_order)]
    lines += [_rule(r) for r in sorted(state.rules, key=repr)]
    for (ns, ifname), qd in sorted(state.qdiscs.items()):
        lines.append(" ".join(["tc", "-n", q(ns), "qdisc", "replace", "dev", q(ifname), "root",
                               "tbf", "rate", f"{qd.rate_mbit}mbit",
                               "burst", str(tc.burst_bytes(qd.rate_mbit)),
                               "latency", f"{tc.LATENCY_MS}ms"]))
    lines += _resolvers(state)
    return "\n".join(lines) + "\n"


def script_down(state: KernelState) -> str:
    """`ip netns del` of every namespace (its links go with it), then the resolv.conf dirs."""
    lines = [f"ip netns del {q(ns)}" for ns in sorted(state.namespaces)]
    lines += [f"rm -rf -- {q(f'{ETC_NETNS}/{ns}')}" for ns in sorted(state.resolvers)]
    return "\n".join(lines) + "\n"


def commands(script: str) -> Iterable[str]:
    """The command lines of a generated script (no comments, no blank lines)."""
    return (line for line in script.splitlines() if line and not line.startswith("#"))
