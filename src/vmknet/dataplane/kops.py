"""Kernel operations: the steps of a data-plane plan, each with its exact inverse.

A backend executes these one at a time; `apply` undoes the completed ones in
reverse order when a step fails, so a failed apply leaves the kernel as it
was (the checkpoint nmstate lacks in pure-kernel mode).
"""

from __future__ import annotations

from dataclasses import dataclass

from .kstate import Address, Filter, Link, Qdisc, Resolver, Route, Rule


@dataclass(frozen=True, slots=True)
class CreateNamespace:
    ns: str

    def inverse(self) -> KernelOp:
        return DeleteNamespace(self.ns)


@dataclass(frozen=True, slots=True)
class DeleteNamespace:
    """Only of an empty namespace: the plan deletes its contents first."""

    ns: str

    def inverse(self) -> KernelOp:
        return CreateNamespace(self.ns)


@dataclass(frozen=True, slots=True)
class AddLink:
    """A bridge or ifb; for a veth, both ends (`link` and `peer_link`) in one step."""

    link: Link
    peer_link: Link | None = None

    def inverse(self) -> KernelOp:
        return DeleteLink(self.link, self.peer_link)


@dataclass(frozen=True, slots=True)
class DeleteLink:
    """Deleting one end of a veth deletes the pair."""

    link: Link
    peer_link: Link | None = None

    def inverse(self) -> KernelOp:
        return AddLink(self.link, self.peer_link)


@dataclass(frozen=True, slots=True)
class ModifyLink:
    """Change master, MTU, MAC, admin state or STP settings of an existing link."""

    before: Link
    after: Link

    def inverse(self) -> KernelOp:
        return ModifyLink(self.after, self.before)


@dataclass(frozen=True, slots=True)
class AddAddress:
    address: Address

    def inverse(self) -> KernelOp:
        return DeleteAddress(self.address)


@dataclass(frozen=True, slots=True)
class DeleteAddress:
    address: Address

    def inverse(self) -> KernelOp:
        return AddAddress(self.address)


@dataclass(frozen=True, slots=True)
class AddRoute:
    route: Route

    def inverse(self) -> KernelOp:
        return DeleteRoute(self.route)


@dataclass(frozen=True, slots=True)
class DeleteRoute:
    route: Route

    def inverse(self) -> KernelOp:
        return AddRoute(self.route)


@dataclass(frozen=True, slots=True)
class AddRule:
    rule: Rule

    def inverse(self) -> KernelOp:
        return DeleteRule(self.rule)


@dataclass(frozen=True, slots=True)
class DeleteRule:
    rule: Rule

    def inverse(self) -> KernelOp:
        return AddRule(self.rule)


@dataclass(frozen=True, slots=True)
class SetSysctl:
    ns: str
    key: str  # "net.ipv4.tcp_congestion_control"
    before: str | None  # None: the kernel's default (never restored to anything else)
    after: str

    def inverse(self) -> KernelOp:
        return SetSysctl(self.ns, self.key, self.after, self.before or self.after)


@dataclass(frozen=True, slots=True)
class SetQdisc:
    """Replace, add (before None) or remove (after None) the root qdisc of an interface."""

    ns: str
    ifname: str
    before: Qdisc | None
    after: Qdisc | None

    def inverse(self) -> KernelOp:
        return SetQdisc(self.ns, self.ifname, self.after, self.before)


@dataclass(frozen=True, slots=True)
class SetResolver:
    """Write (after set) or remove (after None) a namespace's resolv.conf."""

    ns: str
    before: Resolver | None
    after: Resolver | None

    def inverse(self) -> KernelOp:
        return SetResolver(self.ns, self.after, self.before)


@dataclass(frozen=True, slots=True)
class SetFilter:
    """Replace (after set) or flush (after None) a router namespace's nftables ruleset (SEC-6).

    One `nft -f` transaction: the kernel swaps the whole ruleset at once, so no
    packet ever sees half a filter.
    """

    ns: str
    before: Filter | None
    after: Filter | None

    def inverse(self) -> KernelOp:
        return SetFilter(self.ns, self.after, self.before)


KernelOp = (
    CreateNamespace | DeleteNamespace | AddLink | DeleteLink | ModifyLink | AddAddress
    | DeleteAddress | AddRoute | DeleteRoute | AddRule | DeleteRule | SetSysctl | SetQdisc
    | SetResolver | SetFilter
)
