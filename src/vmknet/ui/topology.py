"""One host's networking as the vSphere Client's virtual switch diagram draws it, as plain data.

    host_diagram(dc, "esx01") -> {"host", "switches": [{name, kind, mtu, uplinks,
                                   portgroups: [{name, vlan, teaming, vmknics}]}], "unattached"}

Every switch the host has (its standard switches, and the distributed switches
it is a member of, SW-5) with every port group, the VMkernel adapters on each
(address, MTU, services, TCP/IP stack) and the uplinks behind (the vmnic, its
link state and speed). A port group's teaming is shown by uplink as vSphere
does: active, standby or unused. Pure: the inventory in, JSON-ready data out.
"""

from __future__ import annotations

from typing import Any

from ..dataplane.naming import natural_key as _natural
from ..model import Datacenter, Host, Netstack, TeamingPolicy, Vmknic
from ..reach import static_v4, static_v6

Json = dict[str, Any]


def adapter(host: Host, name: str, vmk: Vmknic) -> Json:
    stack = host.netstacks.get(vmk.netstack, Netstack())
    v4 = static_v4(vmk)
    addresses = ([str(v4)] if v4 is not None else []) + [str(a) for a in static_v6(vmk, stack)]
    if vmk.ipv4.type == "dhcp":
        addresses.append("DHCP")
    return {"name": name, "addresses": addresses, "mtu": vmk.mtu, "netstack": vmk.netstack,
            "services": [str(s) for s in vmk.services], "enabled": vmk.enabled,
            "mac": vmk.mac}


def _teaming(team: TeamingPolicy, uplinks: list[str]) -> Json:
    return {"loadBalancing": team.load_balancing, "active": list(team.active),
            "standby": list(team.standby), "unused": team.unused(uplinks)}


def _uplink(host: Host, uplink: str, nic: str | None) -> Json:
    pnic = host.nics.get(nic) if nic is not None else None
    return {"name": uplink, "nic": nic, "present": pnic is not None,
            "link": pnic.link if pnic is not None else "down",
            "speed": pnic.speed if pnic is not None else None}


def _adapters_on(host: Host, *, portgroup: str | None = None, dvs: str | None = None,
                 dvportgroup: str | None = None) -> list[Json]:
    found = []
    for name in sorted(host.vmknics, key=_natural):
        v = host.vmknics[name]
        on_dvs = dvs is not None and v.dvs == dvs and v.dvportgroup == dvportgroup
        on_std = portgroup is not None and v.dvs is None and v.portgroup == portgroup
        if on_dvs or on_std:
            found.append(adapter(host, name, v))
    return found


def _standard(host: Host, name: str) -> Json:
    vs = host.vswitches[name]
    groups = [{"name": pg, "vlan": vs.portgroups[pg].vlan,
               "teaming": _teaming(vs.effective_teaming(pg), vs.uplinks),
               "inherited": vs.portgroups[pg].teaming is None,
               "vmknics": _adapters_on(host, portgroup=pg)} for pg in sorted(vs.portgroups)]
    return {"name": name, "kind": "standard", "mtu": vs.mtu, "portgroups": groups,
            "uplinks": [_uplink(host, u, u) for u in vs.uplinks]}


def _distributed(dc: Datacenter, host_name: str, host: Host, name: str) -> Json:
    dvs = dc.distributed_switches[name]
    mapping = dvs.hosts.get(host_name, {})
    groups = [{"name": pg, "vlan": dvs.portgroups[pg].vlan,
               "teaming": _teaming(dvs.effective_teaming(pg), list(dvs.uplinks)),
               "inherited": dvs.portgroups[pg].teaming is None,
               "vmknics": _adapters_on(host, dvs=name, dvportgroup=pg)}
              for pg in sorted(dvs.portgroups)]
    return {"name": name, "kind": "distributed", "mtu": dvs.mtu, "portgroups": groups,
            "uplinks": [_uplink(host, u, mapping.get(u)) for u in dvs.uplinks]}


def _attached(host: Host, switches: list[Json]) -> set[str]:
    return {v["name"] for s in switches for pg in s["portgroups"] for v in pg["vmknics"]}


def host_diagram(dc: Datacenter, host_name: str) -> Json:
    """The diagram's data; adapters on no existing port group are listed as `unattached`."""
    host = dc.host(host_name)
    switches = [_standard(host, n) for n in sorted(host.vswitches, key=_natural)]
    switches += [_distributed(dc, host_name, host, n) for n in sorted(dc.distributed_switches)
                 if host_name in dc.distributed_switches[n].hosts]
    seen = _attached(host, switches)
    lost = [adapter(host, n, host.vmknics[n]) for n in sorted(host.vmknics, key=_natural)
            if n not in seen]
    nics = {n: {"link": p.link, "speed": p.speed, "mtu": p.mtu}
            for n, p in sorted(host.nics.items(), key=lambda kv: _natural(kv[0]))}
    return {"host": host_name, "switches": switches, "unattached": lost, "nics": nics,
            "netstacks": sorted({v.netstack for v in host.vmknics.values()} | set(host.netstacks))}
