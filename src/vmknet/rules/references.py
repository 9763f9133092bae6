"""Structural checks: every name an object refers to exists, and each uplink has one owner."""

from __future__ import annotations

import re
from collections.abc import Iterator

from ..errors import AlreadyExists, InvalidArgument, NotFound, ResourceInUse, VmknetError
from ..model import Datacenter, Host, TeamingPolicy
from .paths import dvs_path, host_path, vmk_path, vswitch_path
from .topology import attachment

VMK_NAME = re.compile(r"vmk\d{1,4}")


def check_teaming(teaming: TeamingPolicy, uplinks: list[str], path: str) -> Iterator[VmknetError]:
    both = set(teaming.active) & set(teaming.standby)
    if both:
        yield InvalidArgument(
            f"Uplink {sorted(both)[0]} cannot be both active and standby", path=path
        )
    for uplink in [*teaming.active, *teaming.standby]:
        if uplink not in uplinks:
            yield InvalidArgument(
                f"Uplink {uplink} in the failover order is not an uplink of the switch "
                f"(uplinks: {', '.join(uplinks) or 'none'})",
                path=path,
            )
    if teaming.load_balancing == "loadbased" and not path.startswith("distributedSwitches"):
        yield InvalidArgument(
            "Load balancing 'loadbased' exists on distributed switches only", path=path
        )


def check_host_references(dc: Datacenter, name: str, host: Host) -> Iterator[VmknetError]:
    owner: dict[str, str] = {}
    for vs_name, vswitch in host.vswitches.items():
        for uplink in vswitch.uplinks:
            if uplink not in host.nics:
                yield NotFound(f"Physical NIC {uplink} not found on host {name}",
                               path=vswitch_path(name, vs_name))
            elif uplink in owner:
                yield ResourceInUse(f"Uplink {uplink} is already used by {owner[uplink]}",
                                    path=vswitch_path(name, vs_name))
            owner[uplink] = vs_name
        yield from check_teaming(vswitch.teaming, vswitch.uplinks, vswitch_path(name, vs_name))
        for pg_name, pg in vswitch.portgroups.items():
            if pg.teaming is not None:
                yield from check_teaming(pg.teaming, vswitch.uplinks,
                                         f"{vswitch_path(name, vs_name)}/portgroups/{pg_name}")
    yield from _dvs_uplinks(dc, name, host, owner)
    yield from _unique_portgroups(name, host)
    for vmk_name in host.vmknics:
        yield from _check_vmknic(dc, name, host, vmk_name)


def _dvs_uplinks(dc: Datacenter, name: str, host: Host, owner: dict[str, str]
                 ) -> Iterator[VmknetError]:
    for dvs_name, dvs in dc.distributed_switches.items():
        for uplink, vmnic in dvs.hosts.get(name, {}).items():
            if vmnic not in host.nics:
                yield NotFound(f"Physical NIC {vmnic} not found on host {name}",
                               path=f"{dvs_path(dvs_name)}/hosts/{name}")
            elif vmnic in owner:
                yield ResourceInUse(f"Uplink {vmnic} is already used by {owner[vmnic]}",
                                    path=f"{dvs_path(dvs_name)}/hosts/{name}")
            owner[vmnic] = dvs_name
            if uplink not in dvs.uplinks:
                yield NotFound(f"Uplink '{uplink}' is not an uplink of {dvs_name}",
                               path=f"{dvs_path(dvs_name)}/hosts/{name}")


def _unique_portgroups(name: str, host: Host) -> Iterator[VmknetError]:
    seen: dict[str, str] = {}
    for vs_name, vswitch in host.vswitches.items():
        for pg in vswitch.portgroups:
            if pg in seen:
                yield AlreadyExists(
                    f"A portgroup with the name {pg} already exists (on {seen[pg]})",
                    path=vswitch_path(name, vs_name),
                )
            seen[pg] = vs_name


def _check_vmknic(dc: Datacenter, name: str, host: Host, vmk_name: str) -> Iterator[VmknetError]:
    vmk = host.vmknics[vmk_name]
    path = vmk_path(name, vmk_name)
    if not VMK_NAME.fullmatch(vmk_name):
        yield InvalidArgument(f"Invalid interface name '{vmk_name}': use vmkN", path=path)
    if vmk.netstack not in host.netstacks:
        yield NotFound(
            f"Netstack instance '{vmk.netstack}' is not found on host {name}: "
            f"add it with 'esxcli network ip netstack add -N {vmk.netstack}'",
            path=path,
        )
    if (vmk.portgroup is None) == (vmk.dvs is None):
        yield InvalidArgument(
            f"{vmk_name} must name either a port group or a distributed switch port group",
            path=path,
        )
        return
    if vmk.dvs is not None:
        yield from _check_dv_attachment(dc, name, vmk_name, vmk.dvs, vmk.dvportgroup)
    elif attachment(dc, name, host, vmk) is None:
        yield NotFound(f"Portgroup '{vmk.portgroup}' not found on host {name}", path=path)


def _check_dv_attachment(dc: Datacenter, host: str, vmk_name: str, dvs_name: str,
                         pg: str | None) -> Iterator[VmknetError]:
    path = vmk_path(host, vmk_name)
    dvs = dc.distributed_switches.get(dvs_name)
    if dvs is None:
        yield NotFound(f"Distributed switch '{dvs_name}' not found", path=path)
    elif host not in dvs.hosts:
        yield NotFound(f"Host {host} is not a member of distributed switch {dvs_name}: "
                       f"add it with 'vmknet dvs host add'", path=path)
    elif pg not in dvs.portgroups:
        yield NotFound(f"Distributed port group '{pg}' not found on {dvs_name}", path=path)


def check_datacenter_references(dc: Datacenter) -> Iterator[VmknetError]:
    member_of: dict[str, str] = {}
    for cl_name, cluster in dc.clusters.items():
        for host in cluster.hosts:
            if host not in dc.hosts:
                yield NotFound(f"Host '{host}' of cluster {cl_name} not found",
                               path=f"clusters/{cl_name}")
            elif host in member_of:
                yield ResourceInUse(f"Host {host} is already in cluster {member_of[host]}",
                                    path=f"clusters/{cl_name}")
            member_of[host] = cl_name
    for dvs_name, dvs in dc.distributed_switches.items():
        if len(set(dvs.uplinks)) != len(dvs.uplinks):
            yield InvalidArgument("Uplink names must be unique", path=dvs_path(dvs_name))
        yield from check_teaming(dvs.teaming, dvs.uplinks, dvs_path(dvs_name))
        for pg_name, pg in dvs.portgroups.items():
            if pg.teaming is not None:
                yield from check_teaming(pg.teaming, dvs.uplinks,
                                         f"{dvs_path(dvs_name)}/portgroups/{pg_name}")
        for host in dvs.hosts:
            if host not in dc.hosts:
                yield NotFound(f"Host '{host}' of distributed switch {dvs_name} not found",
                               path=f"{dvs_path(dvs_name)}/hosts/{host}")


def host_exists(dc: Datacenter, name: str) -> Iterator[VmknetError]:
    if name not in dc.hosts:
        yield NotFound(f"Host '{name}' not found", path=host_path(name))
