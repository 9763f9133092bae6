"""The kernel state vmknet realises: plain objects, one per kernel thing, keyed for diffing.

This is the contract between the pure side (`render` turns a Datacenter into
a `KernelState`, `plan` diffs two of them into ordered `KernelOp`s) and the
backends (`linux` applies ops with netlink and reads the state back; `memory`
is its in-memory twin). Nothing here touches the system.

Every namespace vmknet makes starts with a lab prefix (``vmkl-<lab>.``), so
leftovers after a crash can be found and removed (LAB.md).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Literal

LinkKind = Literal["veth", "bridge", "ifb"]

MANAGED_SYSCTLS: tuple[str, ...] = (
    "net.ipv4.tcp_congestion_control",
    "net.ipv4.ip_forward",
    "net.ipv4.conf.all.arp_ignore",
    "net.ipv4.conf.all.arp_announce",
    "net.ipv4.conf.all.rp_filter",
    "net.ipv4.conf.all.promote_secondaries",
    "net.ipv6.conf.all.disable_ipv6",
    "net.ipv6.conf.all.keep_addr_on_down",
    "net.ipv6.conf.all.accept_dad",
    "net.ipv6.conf.default.accept_dad",
    "net.ipv6.conf.all.forwarding",
)
"""Every sysctl `render` may set; a backend's `read` reports each of them in every namespace
(a key it did not report would be set again on every apply)."""

POLICY_TABLES = range(100, 1000)
"""Routing tables vmknet owns besides main (254): table 100+N of adapter vmkN (PATH-7)."""


@dataclass(frozen=True, slots=True)
class Link:
    """An interface. A veth pair is one `Link` per end; each names its `peer` (ns, name)."""

    ns: str
    name: str
    kind: LinkKind
    peer: tuple[str, str] | None = None  # veth only
    master: str | None = None  # bridge in the same namespace
    mtu: int = 1500
    mac: str | None = None  # None: let the kernel choose
    up: bool = True
    stp: bool = False  # bridge only: kernel STP (teaming failover, SW-4)
    bridge_priority: int | None = None  # bridge only: STP bridge priority (root: 0)
    port_cost: int | None = None  # bridge port only: STP path cost (failover order)
    ageing: int | None = None  # bridge only, set at creation: FDB ageing s (None 300, 0 none)

    @property
    def key(self) -> tuple[str, str]:
        return (self.ns, self.name)


@dataclass(frozen=True, slots=True)
class Address:
    ns: str
    ifname: str
    cidr: str  # "198.18.4.11/24", "2001:db8:4::11/64"


@dataclass(frozen=True, slots=True)
class Route:
    ns: str
    dst: str  # "default", "default6" (IPv6 default) or a network "198.19.0.0/24"
    gateway: str | None = None
    dev: str | None = None
    table: int = 254  # main
    src: str | None = None  # preferred source address


@dataclass(frozen=True, slots=True)
class Rule:
    """Policy routing: packets from `src` use `table` (PATH-7 overrides, multi-NIC egress)."""

    ns: str
    priority: int
    src: str  # "198.18.4.11/32"
    table: int


@dataclass(frozen=True, slots=True)
class Qdisc:
    """Token bucket on an interface's egress: the physical NIC speed of an uplink."""

    ns: str
    ifname: str
    rate_mbit: int


@dataclass(frozen=True, slots=True)
class Resolver:
    """/etc/netns/<ns>/resolv.conf: the stack's DNS (NS-2)."""

    ns: str
    servers: tuple[str, ...] = ()
    search: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Filter:
    """A router namespace's nftables ruleset (table inet vmknet): what it forwards (SEC-6).

    The forward chain drops by default and accepts each `forward` pair (in
    interface, out interface); the input chain drops packets that arrive on an
    interface for one of the router's own addresses in a `refuse` pair, so a
    gateway of another traffic type does not answer either. `drift` holds
    whatever else a read found in the namespace's ruleset (a foreign table, a
    changed policy, an added rule), one line each: never desired, so a plan
    replaces the ruleset when there is any.
    """

    ns: str
    forward: frozenset[tuple[str, str]] = frozenset()
    refuse: frozenset[tuple[str, str]] = frozenset()  # (in interface, router address)
    drift: tuple[str, ...] = ()


@dataclass
class KernelState:
    """Everything vmknet owns in the kernel, below one namespace prefix."""

    namespaces: set[str] = field(default_factory=set)
    links: dict[tuple[str, str], Link] = field(default_factory=dict)
    addresses: set[Address] = field(default_factory=set)
    routes: set[Route] = field(default_factory=set)
    rules: set[Rule] = field(default_factory=set)
    sysctls: dict[tuple[str, str], str] = field(default_factory=dict)
    qdiscs: dict[tuple[str, str], Qdisc] = field(default_factory=dict)
    resolvers: dict[str, Resolver] = field(default_factory=dict)
    filters: dict[str, Filter] = field(default_factory=dict)  # router namespaces only

    def add_link(self, link: Link) -> None:
        self.links[link.key] = link

    def add_veth(self, a: Link, b: Link) -> None:
        """Both ends of a pair, each naming the other."""
        self.add_link(replace(a, kind="veth", peer=b.key))
        self.add_link(replace(b, kind="veth", peer=a.key))

    def in_namespace(self, ns: str) -> KernelState:
        """The part of the state inside one namespace (for per-namespace comparisons)."""
        return KernelState(
            namespaces={ns} & self.namespaces,
            links={k: v for k, v in self.links.items() if k[0] == ns},
            addresses={a for a in self.addresses if a.ns == ns},
            routes={r for r in self.routes if r.ns == ns},
            rules={r for r in self.rules if r.ns == ns},
            sysctls={k: v for k, v in self.sysctls.items() if k[0] == ns},
            qdiscs={k: v for k, v in self.qdiscs.items() if k[0] == ns},
            resolvers={k: v for k, v in self.resolvers.items() if k == ns},
            filters={k: v for k, v in self.filters.items() if k == ns},
        )
