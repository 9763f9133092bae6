"""Can adapter `a` on one host talk to adapter `b` on another? (SPEC section 5, without a kernel)

This is the reachability half of the one path chooser: `resolve` decides
*which* adapters carry a service and asks this module whether a pair can
talk; lint asks the same question (REQ-3). The answer follows what the
kernel would do with a socket bound to `a` (NS-2: one stack, its own routes):

- family: IPv4 when both ends have a static IPv4 address, else IPv6 when
  both have static IPv6 addresses (and both stacks have IPv6 enabled);
- on-link when the peer is inside the sender's subnet (the connected route
  wins) and both port groups are on one layer-2 segment (SW-3: same VLAN id,
  4095 trunks match anything); inside the subnet but on another VLAN is
  unreachable, as ARP never gets an answer;
- otherwise routed: the adapter's gateway override (PATH-7, only for flows
  leaving that adapter), else the longest matching static route of the
  adapter's stack, else the stack's default gateway. The gateway must lie in
  the adapter's own subnet, because the flow is bound to that adapter.

TCP needs both directions, so `reach` checks `a -> b` and `b -> a`.
"""

from __future__ import annotations

from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Interface, IPv6Address, IPv6Interface

from .model import Datacenter, Host, Netstack, Vmknic
from .model.vswitch import VLAN_TRUNK

IPAddress = IPv4Address | IPv6Address
IPInterface = IPv4Interface | IPv6Interface

_NO_STACK = Netstack()  # a stack missing from the host (a reference error) routes nothing


@dataclass(frozen=True, slots=True)
class Side:
    """One end of a pair: everything reachability needs about one adapter."""

    host: str
    vmknic: str
    vmk: Vmknic
    stack: Netstack
    vlan: int | None  # None: the port group it names does not exist

    @property
    def label(self) -> str:
        return f"{self.host}/{self.vmknic}"


@dataclass(frozen=True, slots=True)
class Reach:
    """`a` and `b` can talk; hops are None when on-link."""

    source_address: IPInterface
    target_address: IPInterface
    next_hop: IPAddress | None
    return_hop: IPAddress | None
    why: str

    @property
    def same_subnet(self) -> bool:
        return self.next_hop is None and self.return_hop is None


@dataclass(frozen=True, slots=True)
class Unreachable:
    why: str


@dataclass(frozen=True, slots=True)
class _Hop:
    gateway: IPAddress | None
    why: str


def side(dc: Datacenter, host_name: str, host: Host, vmk_name: str) -> Side:
    vmk = host.vmknics[vmk_name]
    stack = host.netstacks.get(vmk.netstack, _NO_STACK)
    return Side(host_name, vmk_name, vmk, stack, vlan_of(dc, host, vmk))


def vlan_of(dc: Datacenter, host: Host, vmk: Vmknic) -> int | None:
    """The VLAN id of the adapter's (standard or distributed) port group."""
    if vmk.dvs is not None:
        dvs = dc.distributed_switches.get(vmk.dvs)
        if dvs is None or vmk.dvportgroup not in dvs.portgroups:
            return None
        return dvs.portgroups[vmk.dvportgroup].vlan
    for vswitch in host.vswitches.values():
        pg = vswitch.portgroups.get(vmk.portgroup or "")
        if pg is not None:
            return pg.vlan
    return None


def same_segment(vlan_a: int | None, vlan_b: int | None) -> bool:
    """SW-3: one layer-2 segment when the VLAN ids match; a trunk (4095) matches any."""
    if vlan_a is None or vlan_b is None:
        return False
    return vlan_a == vlan_b or VLAN_TRUNK in (vlan_a, vlan_b)


def static_v4(vmk: Vmknic) -> IPv4Interface | None:
    return vmk.ipv4.address if vmk.ipv4.type == "static" else None


def static_v6(vmk: Vmknic, stack: Netstack) -> list[IPv6Interface]:
    return list(vmk.ipv6.addresses) if stack.ipv6_enabled else []


def has_address(vmk: Vmknic, stack: Netstack) -> bool:
    return static_v4(vmk) is not None or bool(static_v6(vmk, stack))


def reach(a: Side, b: Side) -> Reach | Unreachable:
    """Both directions between `a` and `b` (see the module docstring)."""
    pair = _addresses(a, b)
    if isinstance(pair, Unreachable):
        return pair
    addr_a, addr_b = pair
    l2 = same_segment(a.vlan, b.vlan)
    forward = _hop(a, b, addr_a, addr_b.ip, l2)
    if isinstance(forward, Unreachable):
        return forward
    back = _hop(b, a, addr_b, addr_a.ip, l2)
    if isinstance(back, Unreachable):
        return back
    if forward.gateway is None and back.gateway is None:
        why = f"same subnet {addr_a.network}"
    else:
        why = f"{forward.why}, return {back.why}"
    return Reach(addr_a, addr_b, forward.gateway, back.gateway, why)


def _addresses(a: Side, b: Side) -> tuple[IPInterface, IPInterface] | Unreachable:
    v4_a, v4_b = static_v4(a.vmk), static_v4(b.vmk)
    if v4_a is not None and v4_b is not None:
        return v4_a, v4_b
    v6_a, v6_b = static_v6(a.vmk, a.stack), static_v6(b.vmk, b.stack)
    if v6_a and v6_b:
        return _best_v6(v6_a, v6_b)
    return Unreachable(f"{a.label} and {b.label} share no address family with static addresses")


def _best_v6(
    mine: list[IPv6Interface], theirs: list[IPv6Interface]
) -> tuple[IPInterface, IPInterface]:
    """Prefer a pair in one subnet, as source address selection would (RFC 6724 rule 8)."""
    for ours in mine:
        for peer in theirs:
            if peer.ip in ours.network:
                return ours, peer
    return mine[0], theirs[0]


def _hop(
    src: Side, dst: Side, addr: IPInterface, peer: IPAddress, l2: bool
) -> _Hop | Unreachable:
    if peer in addr.network:
        if l2:
            return _Hop(None, "on-link")
        return Unreachable(
            f"VLAN mismatch: {src.label} is on {_vlan_text(src.vlan)}, "
            f"{dst.label} on {_vlan_text(dst.vlan)} (same subnet {addr.network})"
        )
    chosen = gateway_for(src.vmk, src.stack, peer)
    if chosen is None:
        return Unreachable(
            f"different subnets ({addr.network} vs {peer}) and no route from {src.label} "
            f"on stack {src.vmk.netstack}"
        )
    gateway, origin = chosen
    if not _on_link(gateway, addr):
        return Unreachable(
            f"gateway {gateway} ({origin}) of {src.label} is outside its subnet {addr.network}"
        )
    return _Hop(gateway, f"via {gateway} ({origin}, from {src.label})")


def gateway_for(vmk: Vmknic, stack: Netstack, peer: IPAddress) -> tuple[IPAddress, str] | None:
    """PATH-7 override, then the longest matching static route, then the default gateway."""
    override = vmk.ipv4.gateway if peer.version == 4 else vmk.ipv6.gateway
    if override is not None:
        return override, "gateway override, PATH-7"
    route = longest_match(stack, peer)
    if route is not None:
        return route[0], f"{route[1]} of stack {vmk.netstack}"
    default = stack.gateway if peer.version == 4 else stack.ipv6_gateway
    if default is not None:
        return default, f"default gateway of stack {vmk.netstack}"
    return None


def longest_match(stack: Netstack, peer: IPAddress) -> tuple[IPAddress, str] | None:
    """One pass over the stack's routes: O(routes), no allocation, no global index (NS-2)."""
    best_len = -1
    best: tuple[IPAddress, str] | None = None
    for route in stack.routes:
        net = route.network
        if net.version == peer.version and net.prefixlen > best_len and peer in net:
            best_len = net.prefixlen
            best = (route.gateway, f"route {net}")
    return best


def _on_link(gateway: IPAddress, addr: IPInterface) -> bool:
    # An IPv6 router is usually named by its link-local address, on-link by definition.
    return gateway in addr.network or (gateway.version == 6 and gateway.is_link_local)


def _vlan_text(vlan: int | None) -> str:
    if vlan is None:
        return "a missing port group"
    return "VLAN 4095 (trunk)" if vlan == VLAN_TRUNK else f"VLAN {vlan}"
