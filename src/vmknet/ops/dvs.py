"""Distributed switches: create, join hosts with a NIC-to-uplink map, distributed port groups."""

from __future__ import annotations

from ..errors import AlreadyExists, InvalidArgument, NotFound, ResourceInUse
from ..events import Event
from ..model import Datacenter, DistributedSwitch, DvPortGroup, TeamingPolicy
from . import lookup


def add(dc: Datacenter, name: str, *, mtu: int = 1500, uplinks: int = 2) -> list[Event]:
    if name in dc.distributed_switches:
        raise AlreadyExists(f"Distributed switch {name} already exists")
    if uplinks < 1:
        raise InvalidArgument("A distributed switch needs at least one uplink")
    names = [f"Uplink {i}" for i in range(1, uplinks + 1)]
    dc.distributed_switches[name] = DistributedSwitch(
        mtu=mtu, uplinks=names, teaming=TeamingPolicy(active=names))
    return []


def remove(dc: Datacenter, name: str) -> list[Event]:
    lookup.dvs(dc, name)
    users = [f"{h}/{v}" for h, host in dc.hosts.items() for v, vmk in host.vmknics.items()
             if vmk.dvs == name]
    if users:
        raise ResourceInUse(f"Distributed switch {name} has VMkernel adapters "
                            f"({', '.join(users)}): remove them first")
    del dc.distributed_switches[name]
    return []


def set_(dc: Datacenter, name: str, *, mtu: int | None = None) -> list[Event]:
    dvs = lookup.dvs(dc, name)
    if mtu is not None:
        if not 1280 <= mtu <= 9000:
            raise InvalidArgument(f"MTU {mtu} is out of range: use 1280-9000 (SW-2)")
        dvs.mtu = mtu
    return []


def host_add(dc: Datacenter, name: str, host: str, mapping: dict[str, str]) -> list[Event]:
    """SW-5: a host joins with a map of uplink name -> vmnic."""
    dvs = lookup.dvs(dc, name)
    dc.host(host)
    if host in dvs.hosts:
        raise AlreadyExists(f"Host {host} is already a member of {name}")
    dvs.hosts[host] = dict(mapping)
    return []


def host_remove(dc: Datacenter, name: str, host: str) -> list[Event]:
    dvs = lookup.dvs(dc, name)
    if host not in dvs.hosts:
        raise NotFound(f"Host {host} is not a member of {name}")
    users = [v for v, vmk in dc.host(host).vmknics.items() if vmk.dvs == name]
    if users:
        raise ResourceInUse(f"Host {host} has adapters on {name} ({', '.join(users)}): "
                            "remove them first")
    del dvs.hosts[host]
    return []


def portgroup_add(dc: Datacenter, name: str, portgroup: str, *, vlan: int = 0,
                  teaming: TeamingPolicy | None = None) -> list[Event]:
    dvs = lookup.dvs(dc, name)
    if portgroup in dvs.portgroups:
        raise AlreadyExists(f"Distributed port group {portgroup} already exists on {name}")
    dvs.portgroups[portgroup] = DvPortGroup(vlan=vlan, teaming=teaming)
    return []


def portgroup_remove(dc: Datacenter, name: str, portgroup: str) -> list[Event]:
    dvs = lookup.dvs(dc, name)
    if portgroup not in dvs.portgroups:
        raise NotFound(f"Distributed port group {portgroup} not found on {name}")
    users = [f"{h}/{v}" for h, host in dc.hosts.items() for v, vmk in host.vmknics.items()
             if vmk.dvs == name and vmk.dvportgroup == portgroup]
    if users:
        raise ResourceInUse(f"Distributed port group {portgroup} is in use by "
                            f"{', '.join(users)}")
    del dvs.portgroups[portgroup]
    return []


def portgroup_set(dc: Datacenter, name: str, portgroup: str, *, vlan: int | None = None,
                  teaming: TeamingPolicy | None = None) -> list[Event]:
    dvs = lookup.dvs(dc, name)
    if portgroup not in dvs.portgroups:
        raise NotFound(f"Distributed port group {portgroup} not found on {name}")
    pg = dvs.portgroups[portgroup]
    if vlan is not None:
        if not 0 <= vlan <= 4095:
            raise InvalidArgument(f"VLAN id {vlan} is out of range: use 0-4095")
        pg.vlan = vlan
    if teaming is not None:
        pg.teaming = teaming
    return []
