"""Datacenters for tests, built directly with the model (no operations, no checks).

Addresses come from 198.18.0.0/15 (RFC 2544 benchmarking) and 2001:db8::/32
(documentation) only. Typical use::

    dc = lab(2)                                  # esx01, esx02 with vmk0 198.18.0.1x/24
    add_vmk(dc.hosts["esx01"], "vmk1", "vMotion", "vmotion", "198.18.4.11/24")
    add_vmk(dc.hosts["esx02"], "vmk1", "vMotion", "vmotion", "198.18.4.12/24", vlan=20)
"""

from __future__ import annotations

from collections.abc import Iterable
from ipaddress import IPv4Address, IPv4Interface, IPv6Address, IPv6Interface, ip_address, ip_network

from vmknet.model import (
    DEFAULT_STACK,
    Cluster,
    Datacenter,
    DistributedSwitch,
    DvPortGroup,
    Host,
    IPv4Config,
    IPv6Config,
    Netstack,
    NfsMount,
    PortGroup,
    Route,
    Service,
    StandardSwitch,
    TeamingPolicy,
    Vmknic,
    new_host,
)

MGMT_NET = "198.18.0"


def host_name(i: int) -> str:
    return f"esx{i:02d}"


def host_with(mgmt_ip: str | None = None, *, nics: int = 4, vlan: int = 0,
              gateway: str | None = None) -> Host:
    """SW-1 host; `mgmt_ip` ("198.18.0.11/24") makes vmk0 static; `gateway`: default stack's."""
    host = new_host(nics, IPv4Interface(mgmt_ip) if mgmt_ip else None)
    host.vswitches["vSwitch0"].portgroups["Management Network"].vlan = vlan
    if gateway is not None:
        set_gateway(host, DEFAULT_STACK, gateway)
    return host


def lab(n: int = 2, *, net: str = MGMT_NET, gateway: str | None = None) -> Datacenter:
    """esx01..esxNN, vmk0 = `net`.(10+i)/24 with Management."""
    hosts = {host_name(i): host_with(f"{net}.{10 + i}/24", gateway=gateway)
             for i in range(1, n + 1)}
    return Datacenter(hosts=hosts)


def ip_of(i: int, net: str) -> str:
    """Host i's address in a /24 given as its first three octets: ip_of(1, "198.18.4") = .11/24."""
    return f"{net}.{10 + i}/24"


def add_vswitch(host: Host, name: str, uplinks: Iterable[str] = (), *, mtu: int = 1500,
                standby: Iterable[str] = ()) -> StandardSwitch:
    ups = list(uplinks)
    stby = list(standby)
    vs = StandardSwitch(
        mtu=mtu, uplinks=ups + [u for u in stby if u not in ups],
        teaming=TeamingPolicy(active=[u for u in ups if u not in stby], standby=stby),
    )
    host.vswitches[name] = vs
    return vs


def add_portgroup(host: Host, pg: str, *, vswitch: str = "vSwitch0", vlan: int = 0,
                  active: Iterable[str] | None = None,
                  standby: Iterable[str] = ()) -> PortGroup:
    """A port group; `active`/`standby` give it a teaming override."""
    vs = host.vswitches.get(vswitch) or add_vswitch(host, vswitch)
    teaming = None
    if active is not None:
        teaming = TeamingPolicy(load_balancing="explicit", active=list(active),
                                standby=list(standby))
    group = PortGroup(vlan=vlan, teaming=teaming)
    vs.portgroups[pg] = group
    return group


def add_vmk(host: Host, name: str, pg: str, stack: str = DEFAULT_STACK,
            ip: str | Iterable[str] | None = None, services: Iterable[Service | str] = (), *,
            vlan: int = 0, mtu: int = 1500, vswitch: str = "vSwitch0", dvs: str | None = None,
            gateway: str | None = None, enabled: bool = True) -> Vmknic:
    """A VMkernel adapter; creates the stack and (unless `dvs`) the port group when missing.

    `ip`: "198.18.4.11/24", "2001:db8:4::11/64" or several of them (IPv4 and IPv6);
    `gateway`: the adapter's gateway override (PATH-7); `dvs`: `pg` is a distributed
    port group of that switch (make it with `add_dvs`).
    """
    if dvs is None and not any(pg in vs.portgroups for vs in host.vswitches.values()):
        add_portgroup(host, pg, vswitch=vswitch, vlan=vlan)
    host.netstacks.setdefault(stack, Netstack())
    addresses = [ip] if isinstance(ip, str) else list(ip or ())
    v4 = [IPv4Interface(a) for a in addresses if ":" not in a]
    v6 = [IPv6Interface(a) for a in addresses if ":" in a]
    gw = ip_address(gateway) if gateway else None
    vmk = Vmknic(
        portgroup=None if dvs else pg, dvs=dvs, dvportgroup=pg if dvs else None,
        netstack=stack, mtu=mtu, enabled=enabled,
        ipv4=IPv4Config(type="static", address=v4[0], gateway=_v4(gw)) if v4 else IPv4Config(),
        ipv6=IPv6Config(addresses=v6, gateway=_v6(gw)),
        services=[s if isinstance(s, Service) else Service.parse(s) for s in services],
    )
    host.vmknics[name] = vmk
    return vmk


def _v4(gw: IPv4Address | IPv6Address | None) -> IPv4Address | None:
    return gw if isinstance(gw, IPv4Address) else None


def _v6(gw: IPv4Address | IPv6Address | None) -> IPv6Address | None:
    return gw if isinstance(gw, IPv6Address) else None


def set_gateway(host: Host, stack: str, gateway: str) -> Netstack:
    ns = host.netstacks.setdefault(stack, Netstack())
    gw = ip_address(gateway)
    if isinstance(gw, IPv4Address):
        ns.gateway = gw
    else:
        ns.ipv6_gateway = gw
    return ns


def add_route(host: Host, stack: str, network: str, gateway: str) -> Route:
    ns = host.netstacks.setdefault(stack, Netstack())
    route = Route(network=ip_network(network), gateway=ip_address(gateway))
    ns.routes.append(route)
    return route


def add_cluster(dc: Datacenter, name: str, hosts: Iterable[str] | None = None, *,
                ha: bool = False, vsan: bool = False, ft: bool = False) -> Cluster:
    """A cluster of `hosts` (default: every host of `dc`)."""
    members = list(dc.hosts) if hosts is None else list(hosts)
    cl = Cluster(ha=ha, vsan=vsan, ft=ft, hosts=members)
    dc.clusters[name] = cl
    return cl


def add_dvs(dc: Datacenter, name: str, hosts: Iterable[str] | None = None, *,
            portgroups: dict[str, int] | None = None, mtu: int = 1500,
            nics: tuple[str, ...] = ("vmnic2", "vmnic3")) -> DistributedSwitch:
    """A distributed switch joined by `hosts` (default all) with `nics` as Uplink 1..n.

    `portgroups` maps distributed port group name -> VLAN id.
    """
    uplinks = [f"Uplink {i}" for i in range(1, len(nics) + 1)]
    members = list(dc.hosts) if hosts is None else list(hosts)
    dvs = DistributedSwitch(
        mtu=mtu, uplinks=uplinks, teaming=TeamingPolicy(active=uplinks),
        hosts={h: dict(zip(uplinks, nics, strict=True)) for h in members},
        portgroups={pg: DvPortGroup(vlan=v) for pg, v in (portgroups or {}).items()},
    )
    dc.distributed_switches[name] = dvs
    return dvs


def add_nfs(host: Host, datastore: str, share: str, servers: Iterable[str],
            version: str = "3") -> NfsMount:
    mount = NfsMount(version="4.1" if version == "4.1" else "3", servers=list(servers),
                     share=share)
    host.storage.nfs[datastore] = mount
    return mount


def vmotion_lab(n: int = 2, *, net: str = "198.18.4", vlan: int = 0) -> Datacenter:
    """`lab(n)` plus vmk1 on the vmotion stack in `net`.0/24 on its own port group."""
    dc = lab(n)
    for i in range(1, n + 1):
        add_vmk(dc.hosts[host_name(i)], "vmk1", "vMotion", "vmotion", ip_of(i, net), vlan=vlan)
    return dc


def big_datacenter(n: int, *, cluster_size: int = 0) -> Datacenter:
    """n hosts with 8 adapters each, for speed tests.

    vmk0 management, vmk1-4 multi-NIC vMotion (vmotion stack), vmk5 vSAN,
    vmk6 provisioning stack, vmk7 FT; one subnet per service. With
    `cluster_size`, hosts form HA+FT+vSAN clusters of that many hosts.
    """
    A = IPv4Address
    hosts = {}
    for i in range(1, n + 1):
        h = host_with(f"{A('198.18.0.0') + i}/22", nics=4)
        for k in range(1, 5):
            add_vmk(h, f"vmk{k}", f"vMotion-{k}", "vmotion",
                    f"{A('198.18.16.0') + (k - 1) * 1024 + i}/20", vlan=20)
        add_vmk(h, "vmk5", "vSAN", ip=f"{A('198.18.32.0') + i}/22", services=[Service.VSAN],
                vlan=30)
        add_vmk(h, "vmk6", "Prov", "vSphereProvisioning", f"{A('198.18.36.0') + i}/22",
                vlan=40)
        add_vmk(h, "vmk7", "FT", ip=f"{A('198.18.40.0') + i}/22",
                services=[Service.FT_LOGGING], vlan=50)
        hosts[host_name(i)] = h
    dc = Datacenter(hosts=hosts)
    names = list(hosts)
    for c in range(0, n if cluster_size else 0, cluster_size or 1):
        add_cluster(dc, f"cl{c // cluster_size + 1:02d}", names[c:c + cluster_size],
                    ha=True, vsan=True, ft=True)
    return dc


def clean_host(i: int, *, vmotion_net: str = "198.18.4") -> Host:
    """A host lint has nothing to say about (SW-7, SEC-1, PATH-8 satisfied).

    vmk0 management on VLAN 10 with vmnic0 active and vmnic1 standby; vmk1 on
    the vmotion stack, port group `vMotion` on VLAN 20, in `vmotion_net`.0/24.
    """
    h = host_with(ip_of(i, MGMT_NET), vlan=10)
    vs0 = h.vswitches["vSwitch0"]
    vs0.uplinks = ["vmnic0", "vmnic1"]
    vs0.teaming = TeamingPolicy(active=["vmnic0"], standby=["vmnic1"])
    add_vmk(h, "vmk1", "vMotion", "vmotion", ip_of(i, vmotion_net), vlan=20)
    return h


def clean_lab(n: int = 2, *, cluster: str | None = None, ha: bool = False,
              vsan: bool = False, ft: bool = False) -> Datacenter:
    """`clean_host` esx01..esxNN, optionally all in one cluster."""
    dc = Datacenter(hosts={host_name(i): clean_host(i) for i in range(1, n + 1)})
    if cluster is not None:
        add_cluster(dc, cluster, ha=ha, vsan=vsan, ft=ft)
    return dc
