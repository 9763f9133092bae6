"""render(): the kernel state that realises a Datacenter (pure, deterministic).

Per adapter vmkN of host H::

    stack ns H.<stack>    host ns H                              _pnet
    vmkN (MAC, MTU) ==== vmkN-p -- vmkN-br (STP) -- vmkN-n2 ==== w<hash> -- vl<vlan> (root)
                                                 `-- vmkN-n3 ==== w<hash> --'

One bridge per adapter because ESXi teams per virtual port; each wire is one
uplink of the adapter's failover order with STP cost 10*(rank+1), so the
kernel's STP picks the first live uplink and fails over to the next (SW-4)
without a daemon. Unused uplinks get no wire. Each VLAN is its own segment in
`_pnet` (this kernel has no 802.1Q devices): SW-3 isolation by construction.
VLAN 4095 (trunk) carries tagged guest traffic only; an adapter cannot use it,
so it gets no wire. Kernel-generated routes (connected, local) are not modelled.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from ipaddress import IPv4Address, IPv4Interface, IPv6Address, IPv6Interface, ip_network
from typing import Protocol

from ..errors import InvalidArgument
from ..model import Datacenter, Host, Netstack, Router, StorageArray, Vmknic, derived_mac
from ..rules.topology import Attachment, attachment
from . import naming
from .kstate import Address, Filter, KernelState, Link, Qdisc, Resolver, Route, Rule
from .naming import Endpoint

ADAPTER_BRIDGE_PRIORITY = 32768  # kernel default: never root while a pnet bridge (0) is up
PNET_BRIDGE_PRIORITY = 0
VLAN_TRUNK = 4095
_SPREAD = frozenset({"portid", "mac", "iphash", "loadbased"})  # policies that spread ports
_NO_DAD = {  # addresses usable at once: engines bind right after apply, verify sees no "tentative"
    "net.ipv6.conf.all.accept_dad": "0",
    "net.ipv6.conf.default.accept_dad": "0",
}
_PLANE_SYSCTLS = {"net.ipv6.conf.all.disable_ipv6": "1"}  # switching planes have no L3
_ROUTER_SYSCTLS = {
    "net.ipv4.ip_forward": "1",
    "net.ipv6.conf.all.forwarding": "1",
    "net.ipv4.conf.all.promote_secondaries": "1",
    **_NO_DAD,
}
_ARRAY_SYSCTLS = {  # an end system: never forwards; each interface answers for its own address
    "net.ipv4.ip_forward": "0",
    "net.ipv4.conf.all.arp_ignore": "1",
    "net.ipv4.conf.all.arp_announce": "2",
    **_NO_DAD,
}
IPIface = IPv4Interface | IPv6Interface
IPAddr = IPv4Address | IPv6Address


@dataclass
class _Builder:
    lab: str
    state: KernelState = field(default_factory=KernelState)
    index: dict[tuple[str, str], Endpoint] = field(default_factory=dict)
    route_keys: set[tuple[str, int, str]] = field(default_factory=set)

    def namespace(self, ns: str, sysctls: dict[str, str]) -> None:
        self.state.namespaces.add(ns)
        self.state.sysctls.update({(ns, k): v for k, v in sysctls.items()})

    def link(self, link: Link, endpoint: Endpoint) -> None:
        # Clashes are caught here, not by the kernel half way through an apply.
        if not naming.fits(link.name) or link.key in self.state.links:
            raise InvalidArgument(f"interface name {link.name!r} in {link.ns} is invalid or "
                                  "used twice: rename the object", ns=link.ns, ifname=link.name)
        self.state.add_link(link)
        self.index[link.key] = endpoint

    def veth(self, a: Link, ea: Endpoint, b: Link, eb: Endpoint) -> None:
        self.link(a, ea)
        self.link(b, eb)
        self.state.add_veth(a, b)

    def segment(self, vlan: int) -> str:
        """The `_pnet` bridge of one VLAN, made on first use."""
        bridge = Link(naming.pnet_ns(self.lab), naming.segment_bridge(vlan), "bridge",
                      stp=True, bridge_priority=PNET_BRIDGE_PRIORITY)
        if bridge.key not in self.state.links:
            self.link(bridge, Endpoint("segment", vlan=vlan))
        return bridge.name

    def route(self, route: Route) -> None:
        # The kernel keys a route by (table, dst): the first claim wins, later ones are dropped.
        key = (route.ns, route.table, route.dst)
        if key not in self.route_keys:
            self.route_keys.add(key)
            self.state.routes.add(route)


def render(dc: Datacenter, lab: str = "lab") -> KernelState:
    return _build(dc, lab).state


def render_index(dc: Datacenter, lab: str = "lab") -> dict[tuple[str, str], Endpoint]:
    """(namespace, ifname) -> what it stands for (host, adapter, vmnic, VLAN): for stats and CLI."""
    return _build(dc, lab).index


def _build(dc: Datacenter, lab: str) -> _Builder:
    b = _Builder(lab)
    b.namespace(naming.pnet_ns(lab), _PLANE_SYSCTLS)
    for name in sorted(dc.hosts):
        _host(b, dc, name, dc.hosts[name])
    for name in sorted(dc.physical.routers):
        _router(b, dc, name)
    for name in sorted(dc.physical.storage_arrays):
        _array(b, name, dc.physical.storage_arrays[name])
    _controller(b, dc)
    _bridge_mtus(b.state)
    return b


def _bridge_mtus(state: KernelState) -> None:
    """A bridge shows the smallest MTU of its ports (the kernel adjusts it as ports join).

    Frames are checked against the egress port's MTU, so a segment joining 1500
    and 9000 ports still drops jumbo frames towards the 1500 ones, as a real
    switch port would.
    """
    smallest: dict[tuple[str, str], int] = {}
    for link in state.links.values():
        if link.master is not None:
            key = (link.ns, link.master)
            smallest[key] = min(smallest.get(key, link.mtu), link.mtu)
    for key, mtu in smallest.items():
        state.links[key] = replace(state.links[key], mtu=mtu)


# ------------------------------------------------------------------ hosts


def _host(b: _Builder, dc: Datacenter, name: str, host: Host) -> None:
    b.namespace(naming.host_ns(b.lab, name), _PLANE_SYSCTLS)
    stacks = dict(host.netstacks)
    for vmk in host.vmknics.values():
        stacks.setdefault(vmk.netstack, Netstack())  # NS-7: a stack appears with its adapter
    for stack_name in sorted(stacks):
        _stack(b, name, host, stack_name, stacks[stack_name])
    attached = {v: attachment(dc, name, host, host.vmknics[v]) for v in _adapters(host)}
    ports = _port_indexes(attached)
    for vmk_name, att in attached.items():
        _adapter(b, name, host, vmk_name, att, ports[vmk_name])


def _adapters(host: Host, stack: str | None = None) -> list[str]:
    return [n for n in sorted(host.vmknics, key=naming.natural_key)
            if stack is None or host.vmknics[n].netstack == stack]


def _port_indexes(attached: dict[str, Attachment | None]) -> dict[str, int]:
    """An adapter's port index among the adapters of its port group (portid spreading)."""
    seen: dict[tuple[str, str], int] = {}
    ports = {}
    for vmk_name, att in attached.items():
        group = (att.switch, att.portgroup) if att else ("", vmk_name)
        ports[vmk_name] = seen.get(group, 0)
        seen[group] = ports[vmk_name] + 1
    return ports


def _failover(att: Attachment, port: int, host: Host) -> list[str]:
    """vmnics in failover order: active (rotated by port when spreading), then standby."""
    active = list(att.teaming.active)
    if att.teaming.load_balancing in _SPREAD and active:
        k = port % len(active)
        active = active[k:] + active[:k]
    order: list[str] = []
    for uplink in active + list(att.teaming.standby):
        nic = att.uplinks.get(uplink)
        if nic is not None and nic in host.nics and nic not in order:
            order.append(nic)
    return order


def _adapter(b: _Builder, host_name: str, host: Host, vmk_name: str,
             att: Attachment | None, port: int) -> None:
    vmk = host.vmknics[vmk_name]
    hns = naming.host_ns(b.lab, host_name)
    mtu = att.switch_mtu if att else vmk.mtu
    # ageing 0: the adapter's bridge never learns MACs, so after a failover or failback it
    # cannot keep sending to a peer's MAC learned on the wire STP just blocked (that stale
    # entry cost ~15 s of outage); only the adapter and one forwarding wire get the flood.
    bridge = Link(hns, naming.adapter_bridge(vmk_name), "bridge", mtu=mtu, stp=True,
                  bridge_priority=ADAPTER_BRIDGE_PRIORITY, ageing=0)
    b.link(bridge, Endpoint("adapter-bridge", host=host_name, vmk=vmk_name))
    mac = (vmk.mac or derived_mac(host_name, vmk_name)).lower()
    inner = Link(naming.stack_ns(b.lab, host_name, vmk.netstack),
                 naming.adapter_ifname(vmk_name), "veth", mac=mac, mtu=vmk.mtu, up=vmk.enabled)
    outer = Link(hns, naming.adapter_port(vmk_name), "veth", master=bridge.name, mtu=mtu)
    b.veth(inner, Endpoint("adapter", host=host_name, vmk=vmk_name),
           outer, Endpoint("adapter-port", host=host_name, vmk=vmk_name))
    if att is None or att.vlan == VLAN_TRUNK:
        return  # a reference error (lint reports it) or a trunk: nothing to plug in
    for rank, nic in enumerate(_failover(att, port, host)):
        _wire(b, host_name, host, vmk_name, nic, rank, att)


def _wire(b: _Builder, host_name: str, host: Host, vmk_name: str, nic_name: str, rank: int,
          att: Attachment) -> None:
    nic = host.nics[nic_name]
    hns, pnet = naming.host_ns(b.lab, host_name), naming.pnet_ns(b.lab)
    seen = Endpoint("wire-host", host=host_name, vmk=vmk_name, nic=nic_name, vlan=att.vlan)
    near = Link(hns, naming.wire_host(vmk_name, nic_name, host.nics), "veth",
                master=naming.adapter_bridge(vmk_name), mtu=att.switch_mtu,
                port_cost=10 * (rank + 1))
    # A NIC with link down is a pulled cable: the far end is down, the near end loses carrier.
    far = Link(pnet, naming.wire_pnet(host_name, vmk_name, nic_name), "veth",
               master=b.segment(att.vlan), mtu=att.switch_mtu, up=nic.link_up)
    b.veth(near, seen, far, Endpoint("wire-pnet", host_name, vmk_name, nic_name, att.vlan))
    for end in (near, far):  # the NIC's speed, egress both ways
        b.state.qdiscs[end.key] = Qdisc(end.ns, end.name, nic.speed)


# ----------------------------------------------------------------- stacks


def _stack_sysctls(stack: Netstack) -> dict[str, str]:
    return {
        "net.ipv4.tcp_congestion_control": "reno" if stack.congestion_control == "newreno"
        else "cubic",
        "net.ipv4.ip_forward": "0",  # NS-2: traffic never crosses stacks, nor adapters
        "net.ipv4.conf.all.arp_ignore": "1",  # multihomed adapters answer for their own address
        "net.ipv4.conf.all.arp_announce": "2",
        "net.ipv4.conf.all.rp_filter": "2",  # loose: multi-NIC vMotion replies on another vmk
        "net.ipv6.conf.all.disable_ipv6": "0" if stack.ipv6_enabled else "1",
        "net.ipv6.conf.all.keep_addr_on_down": "1",  # a disabled adapter keeps its config
        **_NO_DAD,
    }


def _stack(b: _Builder, host_name: str, host: Host, stack_name: str, stack: Netstack) -> None:
    ns = naming.stack_ns(b.lab, host_name, stack_name)
    b.namespace(ns, _stack_sysctls(stack))
    if stack.dns_servers or stack.search_domains:
        b.state.resolvers[ns] = Resolver(ns, tuple(str(s) for s in stack.dns_servers),
                                         tuple(stack.search_domains))
    adapters = {n: host.vmknics[n] for n in _adapters(host, stack_name)}
    for vmk_name, vmk in adapters.items():
        for iface in _ifaces(vmk, stack.ipv6_enabled):
            b.state.addresses.add(Address(ns, naming.adapter_ifname(vmk_name), str(iface)))
    _main_routes(b, ns, stack, adapters)
    for vmk_name, vmk in adapters.items():
        if vmk.enabled:  # the kernel refuses routes via a down link
            _policy(b, ns, stack, vmk_name, vmk)


def _ifaces(vmk: Vmknic, ipv6: bool) -> list[IPIface]:
    """Static addresses; DHCP/autoconf ones are the kernel's, not desired state."""
    found: list[IPIface] = []
    if vmk.ipv4.type == "static" and vmk.ipv4.address is not None:
        found.append(vmk.ipv4.address)
    return found + (list(vmk.ipv6.addresses) if ipv6 else [])


def _dst(network: str) -> str:
    net = ip_network(network, strict=False)
    if net.prefixlen == 0:
        return "default" if net.version == 4 else "default6"
    return str(net)


def _gateways(stack: Netstack) -> list[tuple[str, IPAddr]]:
    """(dst, gateway) of the stack: defaults first, then static routes; families kept apart."""
    wanted: list[tuple[str, IPAddr]] = []
    if stack.gateway is not None:
        wanted.append(("default", stack.gateway))
    if stack.ipv6_gateway is not None and stack.ipv6_enabled:
        wanted.append(("default6", stack.ipv6_gateway))
    wanted += [(_dst(str(r.network)), r.gateway) for r in stack.routes
               if r.network.version == r.gateway.version and (stack.ipv6_enabled
                                                              or r.gateway.version == 4)]
    return wanted


def _main_routes(b: _Builder, ns: str, stack: Netstack, adapters: dict[str, Vmknic]) -> None:
    for dst, gateway in _gateways(stack):
        dev = _onlink(gateway, adapters, stack.ipv6_enabled)
        if dev is not None:  # an unreachable gateway is a lint finding (NS-3), not a kernel error
            b.route(Route(ns, dst, str(gateway), dev=naming.adapter_ifname(dev)))


def _onlink(gateway: IPAddr, adapters: dict[str, Vmknic], ipv6: bool) -> str | None:
    for vmk_name, vmk in adapters.items():
        if vmk.enabled and any(gateway in i.network for i in _ifaces(vmk, ipv6)):
            return vmk_name
    return None


def _policy(b: _Builder, ns: str, stack: Netstack, vmk_name: str, vmk: Vmknic) -> None:
    """Table 100+N: a flow bound to vmkN's address leaves by vmkN (multi-NIC, PATH-7)."""
    table, dev = naming.policy_table(vmk_name), naming.adapter_ifname(vmk_name)
    if table is None:
        return
    for iface in _ifaces(vmk, stack.ipv6_enabled):
        net, v4 = iface.network, iface.version == 4
        b.route(Route(ns, str(net), None, dev=dev, table=table, src=str(iface.ip)))
        override = vmk.ipv4.gateway if v4 else vmk.ipv6.gateway
        default = override if override is not None else (stack.gateway if v4
                                                          else stack.ipv6_gateway)
        if default is not None and default in net:
            b.route(Route(ns, "default" if v4 else "default6", str(default), dev=dev,
                          table=table))
        for dst, gateway in _gateways(stack):
            if gateway in net and not dst.startswith("default"):
                b.route(Route(ns, dst, str(gateway), dev=dev, table=table))
        host_len = 32 if v4 else 128
        b.state.rules.add(Rule(ns, naming.policy_priority(vmk_name), f"{iface.ip}/{host_len}",
                               table))


# ------------------------------------------------------- physical network


def _router(b: _Builder, dc: Datacenter, name: str) -> None:
    ns = naming.router_ns(b.lab, name)
    b.namespace(ns, _ROUTER_SYSCTLS)
    router = dc.physical.routers[name]
    for i, iface in enumerate(router.interfaces):
        _plug(b, ns, naming.router_ifname(i), naming.router_port(name, i), iface,
              Endpoint("router-if", vlan=iface.vlan, router=name),
              Endpoint("router-port", vlan=iface.vlan, router=name))
    if router.typed:
        b.state.filters[ns] = router_filter(ns, router)


def router_filter(ns: str, router: Router) -> Filter:
    """SEC-6: forward only between interfaces of one traffic type or a declared route.

    The router's own addresses answer only on interfaces it forwards to theirs:
    a vMotion host cannot ping (or reach a service on) the management gateway.
    """
    n = range(len(router.interfaces))
    forward = {(naming.router_ifname(a), naming.router_ifname(b)) for a in n for b in n
               if router.forwards(a, b)}
    refuse = {(naming.router_ifname(a), str(address.ip)) for a in n for b in n
              if not router.forwards(a, b) for address in router.interfaces[b].addresses}
    return Filter(ns, frozenset(forward), frozenset(refuse))


def _array(b: _Builder, name: str, array: StorageArray) -> None:
    """A storage array (STO-6): one interface per VLAN segment, plugged in as a router is."""
    ns = naming.array_ns(b.lab, name)
    b.namespace(ns, _ARRAY_SYSCTLS)
    for i, iface in enumerate(array.interfaces):
        _plug(b, ns, naming.array_ifname(i), naming.array_port(name, i), iface,
              Endpoint("array-if", vlan=iface.vlan, array=name),
              Endpoint("array-port", vlan=iface.vlan, array=name))


class _Plugged(Protocol):
    """An interface of a fabric namespace (a router's, an array's) on one VLAN segment."""

    @property
    def vlan(self) -> int: ...
    @property
    def mtu(self) -> int: ...
    @property
    def addresses(self) -> Sequence[IPv4Interface | IPv6Interface]: ...


def _plug(b: _Builder, ns: str, inner_name: str, outer_name: str, iface: _Plugged,
          inner_end: Endpoint, outer_end: Endpoint) -> None:
    """A veth from `ns` into its VLAN's segment in `_pnet`, with the interface's addresses."""
    inner = Link(ns, inner_name, "veth", mtu=iface.mtu)
    outer = Link(naming.pnet_ns(b.lab), outer_name, "veth", master=b.segment(iface.vlan),
                 mtu=iface.mtu)
    b.veth(inner, inner_end, outer, outer_end)
    for address in iface.addresses:
        b.state.addresses.add(Address(ns, inner.name, str(address)))


def _controller(b: _Builder, dc: Datacenter) -> None:
    ctl = dc.physical.controller
    if ctl is None:
        return
    ns = naming.controller_ns(b.lab)
    b.namespace(ns, {"net.ipv4.ip_forward": "0", **_NO_DAD})
    inner = Link(ns, naming.CONTROLLER_IF, "veth")
    outer = Link(naming.pnet_ns(b.lab), naming.CONTROLLER_PORT, "veth",
                 master=b.segment(ctl.vlan))
    b.veth(inner, Endpoint("controller-if", vlan=ctl.vlan),
           outer, Endpoint("controller-port", vlan=ctl.vlan))
    b.state.addresses.add(Address(ns, inner.name, str(ctl.address)))
    if ctl.gateway is not None and ctl.gateway in ctl.address.network:
        b.route(Route(ns, "default", str(ctl.gateway), dev=inner.name))
