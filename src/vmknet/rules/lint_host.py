"""Lint checks that look at one host at a time: adapters, stacks, switches under them."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network

from ..model import Host, Netstack, Service
from ..reach import same_segment
from .lint_base import Adapter, Context, Finding, IPInterface, finding, host_finding, names
from .paths import netstack_path

IPAddress = IPv4Address | IPv6Address
IPNetwork = IPv4Network | IPv6Network


def check_dedicated(ctx: Context) -> Iterator[Finding]:
    """SVC-6: legal, but one traffic type per adapter isolates and sizes each one."""
    for adapters in ctx.adapters.values():
        for a in adapters.values():
            if len(set(a.vmk.services)) > 1:
                tags = ", ".join(s.tag for s in a.vmk.services)
                yield finding("SVC-6", "warning", a.path,
                              f"{a.label} carries several services ({tags})",
                              "Dedicate a separate VMkernel adapter for every traffic type")


def check_multihoming(ctx: Context) -> Iterator[Finding]:
    """PATH-8: two adapters of one stack in one subnet make the egress adapter ambiguous."""
    for host, adapters in ctx.adapters.items():
        h = ctx.dc.hosts[host]
        by_subnet: dict[tuple[str, IPNetwork], list[Adapter]] = defaultdict(list)
        for a in adapters.values():
            for addr in a.addresses:
                by_subnet[a.vmk.netstack, addr.network].append(a)
        for (stack, subnet), group in by_subnet.items():
            if len(group) > 1 and not _multihoming_allowed(h, group):
                yield finding(
                    "PATH-8", "error", netstack_path(host, stack),
                    f"{names(a.name for a in group)} on {host} are all in subnet {subnet} "
                    f"on stack {stack}: the egress adapter is ambiguous",
                    "Give each adapter its own subnet; one subnet for several adapters is "
                    "supported only for multi-NIC vMotion and iSCSI port binding")


def _multihoming_allowed(host: Host, group: list[Adapter]) -> bool:
    if all(a.vmk.carries(Service.VMOTION) for a in group):
        return True  # SW-6: multi-NIC vMotion puts N adapters in one subnet
    bound = host.storage.iscsi.bound_vmknics if host.storage.iscsi else []
    return all(a.name in bound for a in group)  # STO-1: port binding does the same


def check_management_redundancy(ctx: Context) -> Iterator[Finding]:
    """SW-7: a management adapter behind a single physical NIC loses the host on one failure."""
    for host, adapters in ctx.adapters.items():
        nics = ctx.dc.hosts[host].nics
        for a in adapters.values():
            if not a.vmk.carries(Service.MANAGEMENT) or a.att is None:
                continue
            team = a.att.teaming
            real = [a.att.uplinks.get(u) for u in [*team.active, *team.standby]]
            vmnics = sorted({n for n in real if n is not None and n in nics})
            if len(vmnics) < 2:
                yield finding(
                    "SW-7", "warning", a.path,
                    f"Management adapter {a.label} has {len(vmnics)} physical NIC(s) behind "
                    f"it ({', '.join(vmnics) or 'none'})",
                    f"Add a second physical NIC to {a.att.switch} as active or standby uplink "
                    f"of port group {a.att.portgroup}")


def check_vmotion_isolation(ctx: Context) -> Iterator[Finding]:
    """SEC-1: vMotion carries VM memory; sharing management's subnet or VLAN exposes it."""
    for adapters in ctx.adapters.values():
        vmotion = [a for a in adapters.values() if a.vmk.carries(Service.VMOTION)]
        mgmt = [a for a in adapters.values() if a.vmk.carries(Service.MANAGEMENT)]
        for v in vmotion:
            shared = [why for m in mgmt if (why := _shared(v, m))]
            if shared:
                yield finding(
                    "SEC-1", "warning", v.path,
                    f"vMotion adapter {v.label} is not isolated from management: "
                    + "; ".join(shared),
                    "Put vMotion on its own VLAN and subnet (and set migration encryption "
                    "to required where that is not possible)")


def _shared(v: Adapter, m: Adapter) -> str | None:
    if v.name == m.name:
        return f"{v.name} carries both"
    subnets = {x.network for x in v.addresses} & {x.network for x in m.addresses}
    if subnets:
        return f"same subnet {min(str(n) for n in subnets)} as {m.name}"
    if v.att is not None and m.att is not None and same_segment(v.att.vlan, m.att.vlan):
        return f"same VLAN {v.att.vlan} as {m.name}"
    return None


def check_uplink_mtu(ctx: Context) -> Iterator[Finding]:
    """MTU: frames larger than an active uplink's MTU are dropped by the physical NIC."""
    for host, adapters in ctx.adapters.items():
        nics = ctx.dc.hosts[host].nics
        for a in adapters.values():
            if a.att is None:
                continue
            for uplink in a.att.teaming.active:
                vmnic = a.att.uplinks.get(uplink)
                nic = nics.get(vmnic) if vmnic else None
                if nic is not None and nic.mtu < a.vmk.mtu:
                    yield finding(
                        "MTU", "warning", a.path,
                        f"{a.label} has MTU {a.vmk.mtu}, above MTU {nic.mtu} of its active "
                        f"uplink {vmnic}",
                        f"Raise the MTU of {vmnic} to {a.vmk.mtu} or lower the adapter's MTU")


def check_overlap(ctx: Context) -> Iterator[Finding]:
    """OVERLAP: legal across stacks (NS-2 isolates them) but ambiguous to people and tools."""
    for host, adapters in ctx.adapters.items():
        spans = [_Span(a.vmk.netstack, a.name, addr) for a in adapters.values()
                 for addr in a.addresses]
        for i, x in enumerate(spans):
            for y in spans[i + 1:]:
                if x.stack != y.stack and x.overlaps(y):
                    yield host_finding(
                        "OVERLAP", "warning", host,
                        f"{x.vmk} ({x.stack}, {x.net}) and {y.vmk} ({y.stack}, {y.net}) on "
                        f"{host} have overlapping subnets on different stacks",
                        "Use distinct subnets per stack so an address names one network")


class _Span:
    """A subnet as an integer range: overlap tests without building network objects."""

    __slots__ = ("first", "last", "net", "stack", "version", "vmk")

    def __init__(self, stack: str, vmk: str, addr: IPInterface) -> None:
        self.stack, self.vmk, self.net, self.version = stack, vmk, addr.network, addr.version
        self.first = int(addr.network.network_address)
        self.last = int(addr.network.broadcast_address)

    def overlaps(self, other: _Span) -> bool:
        return (self.version == other.version and self.first <= other.last
                and other.first <= self.last)


def check_gateways(ctx: Context) -> Iterator[Finding]:
    """NS-3: a stack's gateways must be on-link for one of its adapters (or via a route)."""
    for host, adapters in ctx.adapters.items():
        for stack_name, stack in ctx.dc.hosts[host].netstacks.items():
            mine = [a for a in adapters.values() if a.vmk.netstack == stack_name]
            if any(_dynamic(a) for a in mine):
                continue  # DHCP/autoconf addresses are unknown until run time
            on_link = [addr for a in mine for addr in a.addresses]
            for gw, what in _gateways(stack):
                if not _gateway_ok(gw, on_link, stack):
                    yield finding(
                        "NS-3", "error", netstack_path(host, stack_name),
                        f"{what} {gw} of stack {stack_name} on {host} is not inside the subnet "
                        f"of any of its adapters ({', '.join(a.name for a in mine) or 'none'})",
                        f"Give an adapter of {stack_name} an address in {gw}'s subnet or "
                        "change the gateway")


def _dynamic(a: Adapter) -> bool:
    return a.vmk.ipv4.type == "dhcp" or a.vmk.ipv6.autoconf or a.vmk.ipv6.dhcpv6


def _gateways(stack: Netstack) -> list[tuple[IPAddress, str]]:
    found: list[tuple[IPAddress, str]] = []
    if stack.gateway is not None:
        found.append((stack.gateway, "Default gateway"))
    if stack.ipv6_gateway is not None:
        found.append((stack.ipv6_gateway, "IPv6 default gateway"))
    found.extend((r.gateway, f"Gateway of route {r.network}") for r in stack.routes)
    return found


def _gateway_ok(gw: IPAddress, on_link: list[IPInterface], stack: Netstack) -> bool:
    if _direct(gw, on_link):
        return True
    # NS-3 "or of a configured static route's next hop": reachable through an on-link route.
    return any(gw in r.network and _direct(r.gateway, on_link) for r in stack.routes)


def _direct(gw: IPAddress, on_link: list[IPInterface]) -> bool:
    if gw.version == 6 and gw.is_link_local:
        return any(a.version == 6 for a in on_link)
    return any(gw in a.network for a in on_link)
