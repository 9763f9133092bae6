"""Where an adapter plugs in: its switch, port group, VLAN, MTU and uplinks."""

from __future__ import annotations

from dataclasses import dataclass

from ..model import Datacenter, Host, TeamingPolicy, Vmknic


@dataclass(frozen=True, slots=True)
class Attachment:
    """The switch side of one adapter; `uplinks` are vmnic names on this host."""

    switch: str  # vSwitchN or the distributed switch name
    portgroup: str
    distributed: bool
    vlan: int
    switch_mtu: int
    teaming: TeamingPolicy
    uplinks: dict[str, str]  # uplink name as the teaming policy names it -> vmnic


def attachment(dc: Datacenter, host_name: str, host: Host, vmk: Vmknic) -> Attachment | None:
    """None when the port group it names does not exist (a reference error)."""
    if vmk.dvs is not None:
        dvs = dc.distributed_switches.get(vmk.dvs)
        if dvs is None or vmk.dvportgroup not in dvs.portgroups:
            return None
        mapping = dvs.hosts.get(host_name, {})
        return Attachment(
            switch=vmk.dvs,
            portgroup=vmk.dvportgroup,
            distributed=True,
            vlan=dvs.portgroups[vmk.dvportgroup].vlan,
            switch_mtu=dvs.mtu,
            teaming=dvs.effective_teaming(vmk.dvportgroup),
            uplinks=dict(mapping),
        )
    for vs_name, vswitch in host.vswitches.items():
        if vmk.portgroup in vswitch.portgroups:
            return Attachment(
                switch=vs_name,
                portgroup=vmk.portgroup,
                distributed=False,
                vlan=vswitch.portgroups[vmk.portgroup].vlan,
                switch_mtu=vswitch.mtu,
                teaming=vswitch.effective_teaming(vmk.portgroup),
                uplinks={u: u for u in vswitch.uplinks},
            )
    return None


def find_portgroup(host: Host, portgroup: str) -> str | None:
    """The standard switch holding `portgroup`, if any."""
    for vs_name, vswitch in host.vswitches.items():
        if portgroup in vswitch.portgroups:
            return vs_name
    return None
