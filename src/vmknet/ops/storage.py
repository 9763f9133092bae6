"""`esxcli iscsi ...` and `esxcli vsan network ...`: storage adapters and their VMkernel ports."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv6Address
from typing import Literal

from ..errors import AlreadyExists, InvalidArgument, NotFound, ResourceInUse, RuleViolation
from ..events import Event
from ..model import Datacenter, Host, IscsiAdapter, NfsMount, NmpDevice, Service
from ..model.storage import Psp
from . import interface, lookup


def iscsi_software_set(dc: Datacenter, host: str, enabled: bool) -> list[Event]:
    h = dc.host(host)
    if enabled and h.storage.iscsi is None:
        h.storage.iscsi = IscsiAdapter()
    elif not enabled and h.storage.iscsi is not None:
        if h.storage.iscsi.bound_vmknics:
            raise ResourceInUse("The software iSCSI adapter still has bound VMkernel ports: "
                                "remove them with 'esxcli iscsi networkportal remove'")
        h.storage.iscsi = None
    return []


def _iscsi(h: Host, adapter: str) -> IscsiAdapter:
    if h.storage.iscsi is None or h.storage.iscsi.name != adapter:
        raise NotFound(f"Adapter {adapter} not found: enable software iSCSI with "
                       "'esxcli iscsi software set --enabled=true'")
    return h.storage.iscsi


def networkportal_add(dc: Datacenter, host: str, adapter: str, vmk: str) -> list[Event]:
    h = dc.host(host)
    iscsi = _iscsi(h, adapter)
    lookup.vmknic(h, vmk)
    if vmk in iscsi.bound_vmknics:
        raise AlreadyExists(f"Vmknic {vmk} is already bound to {adapter}")
    iscsi.bound_vmknics.append(vmk)  # STO-1 is checked on the result
    return []


def networkportal_remove(dc: Datacenter, host: str, adapter: str, vmk: str) -> list[Event]:
    iscsi = _iscsi(dc.host(host), adapter)
    if vmk not in iscsi.bound_vmknics:
        raise NotFound(f"Vmknic {vmk} is not bound to {adapter}")
    iscsi.bound_vmknics.remove(vmk)
    return []


def sendtarget_add(dc: Datacenter, host: str, adapter: str, address: IPv4Address | IPv6Address
                   ) -> list[Event]:
    iscsi = _iscsi(dc.host(host), adapter)
    if address in iscsi.targets:
        raise AlreadyExists(f"Send target {address} already exists on {adapter}")
    iscsi.targets.append(address)
    return []


def sendtarget_remove(dc: Datacenter, host: str, adapter: str,
                      address: IPv4Address | IPv6Address) -> list[Event]:
    iscsi = _iscsi(dc.host(host), adapter)
    if address not in iscsi.targets:
        raise NotFound(f"Send target {address} not found on {adapter}")
    iscsi.targets.remove(address)
    return []


VSAN_TRAFFIC = {"vsan": Service.VSAN, "witness": Service.VSAN_WITNESS}


def vsan_network_add(dc: Datacenter, host: str, vmk: str,
                     traffic: Literal["vsan", "witness"] = "vsan") -> list[Event]:
    return interface.tag_add(dc, host, vmk, VSAN_TRAFFIC[traffic])


def vsan_network_remove(dc: Datacenter, host: str, vmk: str) -> list[Event]:
    h = dc.host(host)
    nic = lookup.vmknic(h, vmk)
    tagged = [s for s in nic.services if s in VSAN_TRAFFIC.values()]
    if not tagged:
        raise NotFound(f"Vmknic {vmk} is not a vSAN interface")
    nic.services = [s for s in nic.services if s not in tagged]
    return []


def _nmp(dc: Datacenter, host: str, device: str) -> NmpDevice:
    nmp = dc.host(host).storage.nmp
    return nmp.setdefault(device, NmpDevice())


def nmp_device_set(dc: Datacenter, host: str, device: str, psp: Psp | None,
                   default: bool = False) -> list[Event]:
    """`esxcli storage nmp device set`: the device's PSP (or back to the SATP's default)."""
    if default:
        dc.host(host).storage.nmp.pop(device, None)
    elif psp is not None:
        _nmp(dc, host, device).psp = psp
    return []


def nmp_roundrobin_set(dc: Datacenter, host: str, device: str, iops: int) -> list[Event]:
    """`esxcli storage nmp psp roundrobin deviceconfig set -t iops -I N`."""
    config = _nmp(dc, host, device)
    if config.psp != "VMW_PSP_RR":
        raise InvalidArgument(f"Device {device} does not use VMW_PSP_RR (it uses "
                              f"{config.psp}): set its PSP first", device=device)
    config.iops = iops
    return []


def nmp_fixed_set(dc: Datacenter, host: str, device: str, path: str | None) -> list[Event]:
    """`esxcli storage nmp psp fixed deviceconfig set -p PATH` (None: `--default`)."""
    config = _nmp(dc, host, device)
    if config.psp != "VMW_PSP_FIXED":
        raise InvalidArgument(f"Device {device} does not use VMW_PSP_FIXED (it uses "
                              f"{config.psp}): set its PSP first", device=device)
    config.preferred = path
    return []


def nfs_add(dc: Datacenter, host: str, name: str, servers: list[str], share: str,
            version: Literal["3", "4.1"] = "3") -> list[Event]:
    """`esxcli storage nfs add` (NFS 3, one server) or `storage nfs41 add` (several).

    STO-2 is refused here, not only linted: an export mounted as NFS 3 on one
    host is never mounted as 4.1 on another (the two lock differently).
    """
    h = dc.host(host)
    if name in h.storage.nfs:
        raise AlreadyExists(f"NFS datastore {name} already exists on {host}", datastore=name)
    if version == "3" and len(servers) != 1:
        raise RuleViolation("STO-2", f"NFS 3 datastore {name} names {len(servers)} servers: "
                            "NFS 3 uses one (STO-2)", datastore=name)
    for other_host, other in sorted(dc.hosts.items()):
        for ds, mount in sorted(other.storage.nfs.items()):
            shared = set(mount.servers) & set(servers)
            if mount.share == share and shared and mount.version != version:
                raise RuleViolation(
                    "STO-2", f"Export {sorted(shared)[0]}:{share} is mounted with NFS "
                    f"{mount.version} as {ds} on {other_host}: it cannot be mounted with NFS "
                    f"{version} too (STO-2)", datastore=name)
    h.storage.nfs[name] = NfsMount(version=version, servers=servers, share=share)
    return []


def nfs_remove(dc: Datacenter, host: str, name: str, version: Literal["3", "4.1"] = "3"
               ) -> list[Event]:
    h = dc.host(host)
    mount = h.storage.nfs.get(name)
    if mount is None or mount.version != version:
        raise NotFound(f"NFS{'' if version == '3' else '41'} datastore {name} not found on "
                       f"{host}", datastore=name)
    del h.storage.nfs[name]
    return []
