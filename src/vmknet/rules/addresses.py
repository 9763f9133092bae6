"""ADDR-1 and ADDR-2: a static adapter address is a usable unicast address, and unique on its
layer-2 network.

ADDR-1  A static address (IPv4 `type: static`, every IPv6 address in `addresses`) is
        present, and not unspecified (nor in 0.0.0.0/8), loopback, multicast, reserved
        (240/4, the limited broadcast), link-local (ESXi assigns those itself; a static
        one is a typo), nor the network or broadcast address of its own subnet (IPv4
        below /31, RFC 3021; for IPv6 the all-zeros Subnet-Router anycast address below
        /127).
ADDR-2  No two adapters have the same address on one layer-2 network: the same VLAN
        on switches connected to the physical fabric (SW-3: every uplinked switch
        plugs into one fabric, a trunk port group sees every VLAN), or the same port
        group VLAN of one uplink-less switch of one host. On separate networks the
        same address is legal (lint's DUP-ADDR still points it out).

Both run in `checks.check`, so files (validate, plan, apply) and esxcli
(`interface ipv4 set`, `ipv6 address add`) refuse the same way. The index is
keyed by address, so the cost grows with the number of adapters, not its square.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Interface, IPv4Network, IPv6Address, IPv6Interface

from ..errors import RuleViolation, VmknetError
from ..model import Datacenter, Host, Vmknic
from ..model.vswitch import VLAN_TRUNK
from .paths import vmk_path

IPInterface = IPv4Interface | IPv6Interface
_THIS_NETWORK = IPv4Network("0.0.0.0/8")


def static_addresses(vmk: Vmknic) -> list[IPInterface]:
    """The addresses a user typed for this adapter (DHCP and autoconf ones are not)."""
    out: list[IPInterface] = []
    if vmk.ipv4.type == "static" and vmk.ipv4.address is not None:
        out.append(vmk.ipv4.address)
    out.extend(vmk.ipv6.addresses)
    return out


def unusable(iface: IPInterface) -> str | None:
    """ADDR-1: why `iface` cannot be a static host address, or None."""
    ip, net = iface.ip, iface.network
    kind = ("unspecified" if ip.is_unspecified else "loopback" if ip.is_loopback
            else "multicast" if ip.is_multicast else "link-local" if ip.is_link_local
            else "reserved" if isinstance(ip, IPv4Address) and ip.is_reserved else None)
    if kind is not None:
        return f"{ip} is a {kind} address"
    if isinstance(ip, IPv4Address) and ip in _THIS_NETWORK:
        return f"{ip} is in {_THIS_NETWORK} (\"this network\", a source address only)"
    if isinstance(iface, IPv4Interface) and net.prefixlen < 31:
        if ip == net.network_address:
            return f"{ip} is the network address of {net}"
        if ip == net.broadcast_address:
            return f"{ip} is the broadcast address of {net}"
    if isinstance(iface, IPv6Interface) and net.prefixlen < 127 and ip == net.network_address:
        return f"{ip} is the Subnet-Router anycast address of {net}"
    return None


def check_static(host_name: str, host: Host) -> Iterator[VmknetError]:
    for vmk_name, vmk in host.vmknics.items():
        if vmk.ipv4.type == "static" and vmk.ipv4.address is None:
            yield RuleViolation(
                "ADDR-1", f"{host_name} {vmk_name}: IPv4 type static needs an address; give "
                "one (address/prefix) or use type dhcp or none",
                path=vmk_path(host_name, vmk_name))
        for iface in static_addresses(vmk):
            why = unusable(iface)
            if why is not None:
                yield RuleViolation(
                    "ADDR-1", f"{host_name} {vmk_name}: static address {iface} refused: {why}; "
                    "use a unicast host address of the subnet",
                    path=vmk_path(host_name, vmk_name), address=str(iface))


@dataclass(frozen=True, slots=True)
class _Owner:
    host: str
    vmk: str
    segment: tuple[str, ...]  # ("fabric",) or ("local", host, switch)
    vlan: int


def _segment(dc: Datacenter, host_name: str, host: Host, vmk: Vmknic
             ) -> tuple[tuple[str, ...], int] | None:
    """Where the adapter's frames go: the shared fabric or one host's uplink-less switch."""
    if vmk.dvs is not None:
        dvs = dc.distributed_switches.get(vmk.dvs)
        if dvs is None or vmk.dvportgroup not in dvs.portgroups:
            return None  # a reference error, reported by check_host_references
        fabric = bool(dvs.hosts.get(host_name))
        seg = ("fabric",) if fabric else ("local", host_name, vmk.dvs)
        return seg, dvs.portgroups[vmk.dvportgroup].vlan
    for vs_name, vswitch in host.vswitches.items():
        pg = vswitch.portgroups.get(vmk.portgroup or "")
        if pg is not None:
            seg = ("fabric",) if vswitch.uplinks else ("local", host_name, vs_name)
            return seg, pg.vlan
    return None


def _shared(a: _Owner, b: _Owner) -> bool:
    return a.segment == b.segment and (a.vlan == b.vlan or VLAN_TRUNK in (a.vlan, b.vlan))


def check_duplicates(dc: Datacenter, hosts: Iterable[str] | None = None
                     ) -> Iterator[VmknetError]:
    """ADDR-2, reported on the adapters of `hosts` (every host when None)."""
    touched = set(dc.hosts if hosts is None else hosts)
    owners: dict[IPv4Address | IPv6Address, list[_Owner]] = defaultdict(list)
    for host_name, host in dc.hosts.items():
        for vmk_name, vmk in host.vmknics.items():
            where = _segment(dc, host_name, host, vmk)
            if where is None:
                continue
            for ip in {iface.ip for iface in static_addresses(vmk)}:
                owners[ip].append(_Owner(host_name, vmk_name, *where))
    for ip, group in owners.items():
        if len(group) < 2:
            continue
        for i, a in enumerate(group):
            if a.host not in touched:
                continue
            other = next((b for j, b in enumerate(group) if j != i and _shared(a, b)), None)
            if other is not None:
                yield RuleViolation(
                    "ADDR-2", f"{a.host} {a.vmk}: address {ip} is already used by {other.host} "
                    f"{other.vmk} on the same layer-2 network (VLAN {a.vlan}); give each "
                    "adapter its own address", path=vmk_path(a.host, a.vmk), address=str(ip))
                break  # one line per address: the other owner is named already


def check_addresses(dc: Datacenter, hosts: Iterable[str] | None = None) -> Iterator[VmknetError]:
    names = list(dc.hosts if hosts is None else hosts)
    for name in names:
        if name in dc.hosts:
            yield from check_static(name, dc.hosts[name])
    yield from check_duplicates(dc, names)
