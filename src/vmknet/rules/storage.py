"""STO-1 (iSCSI port binding) and STO-3 (software FCoE) as invariants."""

from __future__ import annotations

from collections.abc import Iterator

from ..errors import NotFound, RuleViolation, VmknetError
from ..model import Datacenter, Host
from .paths import host_path, vmk_path
from .topology import attachment


def check_storage(dc: Datacenter, name: str, host: Host) -> Iterator[VmknetError]:
    iscsi = host.storage.iscsi
    if iscsi is not None:
        switches: set[str] = set()
        for vmk_name in iscsi.bound_vmknics:
            yield from _check_binding(dc, name, host, vmk_name, switches)
    for fcoe in host.storage.fcoe:
        yield from _check_fcoe(dc, name, host, fcoe.vmknic, fcoe.vmnic)


def _check_binding(dc: Datacenter, name: str, host: Host, vmk_name: str, switches: set[str]
                   ) -> Iterator[VmknetError]:
    path = f"{host_path(name)}/storage/iscsi"
    vmk = host.vmknics.get(vmk_name)
    if vmk is None:
        yield NotFound(f"Vmknic {vmk_name} bound to iSCSI not found on host {name}", path=path)
        return
    att = attachment(dc, name, host, vmk)
    if att is None:
        return
    team = att.teaming
    if not team.active:
        yield RuleViolation("VnicHasNoUplinks",
                            f"{vmk_name} has no active uplink: give it exactly one (STO-1)",
                            path=path)
    elif len(team.active) > 1 or team.standby:
        yield RuleViolation(
            "VnicHasMultipleUplinks",
            f"{vmk_name} has {len(team.active)} active and {len(team.standby)} standby uplinks: "
            f"iSCSI port binding needs exactly one active and none standby (STO-1)",
            path=path,
        )
    elif att.uplinks.get(team.active[0]) not in host.nics:
        yield RuleViolation("VnicHasWrongUplink",
                            f"{vmk_name}'s active uplink {team.active[0]} is not a physical NIC "
                            f"of this host (STO-1)", path=path)
    switches.add(att.switch)
    if len(switches) > 1:
        names = ", ".join(sorted(switches))
        yield RuleViolation("STO-1", f"All iSCSI-bound adapters must be on one switch ({names})",
                            path=path)
    yield from _targets_in_subnet(name, host, vmk_name, path)


def _targets_in_subnet(name: str, host: Host, vmk_name: str, path: str) -> Iterator[VmknetError]:
    iscsi = host.storage.iscsi
    addr = host.vmknics[vmk_name].ipv4.address
    if iscsi is None or addr is None:
        return
    for target in iscsi.targets:
        if target.version == 4 and target not in addr.network:
            yield RuleViolation(
                "STO-1",
                f"iSCSI target {target} is not in {vmk_name}'s subnet {addr.network}: "
                "port binding needs bound adapters in the targets' subnet",
                path=path,
            )


def _check_fcoe(dc: Datacenter, name: str, host: Host, vmk_name: str, vmnic: str
                ) -> Iterator[VmknetError]:
    path = f"{host_path(name)}/storage/fcoe"
    vmk = host.vmknics.get(vmk_name)
    if vmk is None or vmnic not in host.nics:
        yield NotFound(f"FCoE adapter refers to {vmk_name}/{vmnic}, not found on {name}",
                       path=path)
        return
    iscsi = host.storage.iscsi
    if vmk.services or (iscsi is not None and vmk_name in iscsi.bound_vmknics):
        yield RuleViolation("STO-3",
                            f"Software FCoE needs a dedicated adapter: {vmk_name} carries other "
                            "traffic", path=vmk_path(name, vmk_name))
    att = attachment(dc, name, host, vmk)
    if att is not None and att.switch_mtu < 2500:
        yield RuleViolation("STO-3",
                            f"Software FCoE needs switch MTU 2500 or more ({att.switch} has "
                            f"{att.switch_mtu})", path=vmk_path(name, vmk_name))
