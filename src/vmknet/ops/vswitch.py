"""`esxcli network vswitch standard ...`: standard switches, uplinks, port groups, failover."""

from __future__ import annotations

from ..errors import AlreadyExists, InvalidArgument, NotFound, ResourceInUse
from ..events import Event
from ..model import Datacenter, Host, LoadBalancing, PortGroup, StandardSwitch, TeamingPolicy
from ..rules.topology import find_portgroup
from . import lookup


def add(dc: Datacenter, host: str, name: str, *, mtu: int | None = None) -> list[Event]:
    h = dc.host(host)
    if name in h.vswitches:
        raise AlreadyExists(f"A vswitch with the name {name} already exists")
    h.vswitches[name] = StandardSwitch(mtu=mtu or 1500)
    return []


def remove(dc: Datacenter, host: str, name: str) -> list[Event]:
    h = dc.host(host)
    vswitch = lookup.vswitch(h, name)
    users = [v for v, vmk in h.vmknics.items() if vmk.portgroup in vswitch.portgroups]
    if users:
        raise ResourceInUse(f"Virtual switch {name} has VMkernel adapters ({', '.join(users)}): "
                            "remove them first")
    del h.vswitches[name]
    return []


def set_(dc: Datacenter, host: str, name: str, *, mtu: int | None = None) -> list[Event]:
    vswitch = lookup.vswitch(dc.host(host), name)
    if mtu is not None:
        if not 1280 <= mtu <= 9000:
            raise InvalidArgument(f"MTU {mtu} is out of range: use 1280-9000 (SW-2)")
        vswitch.mtu = mtu
    return []


def uplink_add(dc: Datacenter, host: str, vswitch: str, uplink: str) -> list[Event]:
    h = dc.host(host)
    vs = lookup.vswitch(h, vswitch)
    lookup.nic(h, uplink)
    if uplink in vs.uplinks:
        raise AlreadyExists(f"Uplink {uplink} is already on {vswitch}")
    vs.uplinks.append(uplink)
    if uplink not in vs.teaming.standby:
        # ESXi makes a newly added uplink active in the switch's failover order.
        vs.teaming.active.append(uplink)
    return []


def uplink_remove(dc: Datacenter, host: str, vswitch: str, uplink: str) -> list[Event]:
    vs = lookup.vswitch(dc.host(host), vswitch)
    if uplink not in vs.uplinks:
        raise NotFound(f"Uplink {uplink} is not on {vswitch}")
    vs.uplinks.remove(uplink)
    for team in [vs.teaming, *(pg.teaming for pg in vs.portgroups.values() if pg.teaming)]:
        team.active = [u for u in team.active if u != uplink]
        team.standby = [u for u in team.standby if u != uplink]
    return []


def portgroup_add(dc: Datacenter, host: str, vswitch: str, name: str) -> list[Event]:
    h = dc.host(host)
    vs = lookup.vswitch(h, vswitch)
    if find_portgroup(h, name) is not None:
        raise AlreadyExists(f"A portgroup with the name {name} already exists")
    vs.portgroups[name] = PortGroup()
    return []


def _portgroup(h: Host, name: str, vswitch: str | None = None) -> tuple[str, PortGroup]:
    owner = find_portgroup(h, name)
    if owner is None or (vswitch is not None and owner != vswitch):
        raise NotFound(f"Portgroup {name} not found")
    return owner, h.vswitches[owner].portgroups[name]


def portgroup_remove(dc: Datacenter, host: str, vswitch: str, name: str) -> list[Event]:
    h = dc.host(host)
    owner, _ = _portgroup(h, name, vswitch)
    users = [v for v, vmk in h.vmknics.items() if vmk.portgroup == name and vmk.dvs is None]
    if users:
        raise ResourceInUse(f"Portgroup {name} is in use by {', '.join(users)}: "
                            "remove the adapters first")
    del h.vswitches[owner].portgroups[name]
    return []


def portgroup_set(dc: Datacenter, host: str, name: str, *, vlan: int) -> list[Event]:
    _, pg = _portgroup(dc.host(host), name)
    if not 0 <= vlan <= 4095:
        raise InvalidArgument(f"VLAN id {vlan} is out of range: use 0-4095")
    pg.vlan = vlan
    return []


def _apply_failover(team: TeamingPolicy, active: list[str] | None, standby: list[str] | None,
                    load_balancing: LoadBalancing | None, failback: bool | None,
                    notify_switches: bool | None) -> None:
    if active is not None:
        team.active = active
        if standby is None:
            team.standby = [u for u in team.standby if u not in active]
    if standby is not None:
        team.standby = standby
    if load_balancing is not None:
        team.load_balancing = load_balancing
    if failback is not None:
        team.failback = failback
    if notify_switches is not None:
        team.notify_switches = notify_switches


def failover_set(dc: Datacenter, host: str, *, vswitch: str | None = None,
                 portgroup: str | None = None, active: list[str] | None = None,
                 standby: list[str] | None = None, load_balancing: LoadBalancing | None = None,
                 failback: bool | None = None, notify_switches: bool | None = None,
                 use_vswitch: bool = False) -> list[Event]:
    """Policy of the switch, or (with `portgroup`) the port group's override of it."""
    h = dc.host(host)
    if portgroup is None:
        if vswitch is None:
            raise InvalidArgument("Name a vswitch (-v) or a portgroup (-p)")
        team = lookup.vswitch(h, vswitch).teaming
    else:
        owner, pg = _portgroup(h, portgroup)
        if use_vswitch:
            pg.teaming = None
            return []
        if pg.teaming is None:
            pg.teaming = h.vswitches[owner].teaming.model_copy(deep=True)
        team = pg.teaming
    _apply_failover(team, active, standby, load_balancing, failback, notify_switches)
    return []
