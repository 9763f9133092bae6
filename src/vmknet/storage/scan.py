"""`storage core adapter rescan` and the live path states of a host's software iSCSI adapter.

    scans = rescan(dc, lab, "esx01", "vmhba64")   # discovery per bound adapter x portal
    states = path_states(dc, lab, "esx01", "vmhba64")   # each path's login test, in parallel
    with path_session(dc, lab, "esx01", path) as s: s.read(1, 0, 8)   # I/O over one path

A rescan runs SendTargets discovery from every bound adapter (a channel) to
every send-target portal, then reads each LUN's capacity through that
adapter, and keeps the result in the lab's run directory (ESXi keeps its
discovered targets too): `/run/vmknet/labs/<lab>/hosts/<host>/storage/<adapter>.json`.
A path is `active` when a full login and a SCSI command through its adapter
succeed within LOGIN_TIMEOUT, else `dead`.
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict
from ipaddress import IPv4Address, IPv6Address
from pathlib import Path

from ..dataplane import naming
from ..errors import NotFound, VmknetError
from ..lab.registry import host_dir
from ..model import DEFAULT_STACK, Datacenter, IscsiAdapter
from ..paths import inside
from . import libiscsi
from .initiator import Session
from .paths import Scan, ScannedLun, ScannedTarget, StoragePath, initiator_name, paths

DIRECT_ACCESS = "DIRECT_ACCESS"  # a disk; LUN 0 of tgt is its controller, not a device
MAX_WORKERS = 16


def software_adapter(dc: Datacenter, host: str, adapter: str) -> IscsiAdapter:
    sw = dc.host(host).storage.iscsi
    if sw is None or sw.name != adapter:
        raise NotFound(f"Adapter {adapter} not found: enable software iSCSI with "
                       "'esxcli iscsi software set --enabled=true'", adapter=adapter)
    return sw


def channels(dc: Datacenter, lab: str, host: str, sw: IscsiAdapter
             ) -> list[tuple[int, str | None, str, str | None]]:
    """(channel, vmk, namespace, interface) per bound adapter, in binding order.

    Without port binding the stack's routing chooses the adapter: one channel
    from the default stack, unbound (ESXi does the same).
    """
    h = dc.host(host)
    bound = [v for v in sw.bound_vmknics if v in h.vmknics]
    if not bound:
        return [(0, None, naming.stack_ns(lab, host, DEFAULT_STACK), None)]
    return [(c, v, naming.stack_ns(lab, host, h.vmknics[v].netstack),
             naming.adapter_ifname(v)) for c, v in enumerate(bound)]


def portal_text(address: IPv4Address | IPv6Address) -> str:
    port = libiscsi.ISCSI_PORT
    return f"{address}:{port}" if address.version == 4 else f"[{address}]:{port}"


def cache_file(lab: str, host: str, adapter: str) -> Path:
    return inside(host_dir(lab, host), "storage", f"{adapter}.json")


def rescan(dc: Datacenter, lab: str, host: str, adapter: str) -> list[Scan]:
    """Discover through every channel at every send-target portal; keep and return the result."""
    sw = software_adapter(dc, host, adapter)
    initiator = initiator_name(host)
    jobs = [(ch, portal_text(t)) for ch in channels(dc, lab, host, sw) for t in sw.targets]
    with ThreadPoolExecutor(max_workers=MAX_WORKERS) as pool:
        scans = list(pool.map(lambda job: _scan(initiator, *job), jobs))
    save(lab, host, adapter, scans)
    return scans


def _scan(initiator: str, channel: tuple[int, str | None, str, str | None], portal: str
          ) -> Scan:
    number, vmk, ns, ifname = channel
    try:
        found = libiscsi.discover(ns, ifname, initiator, portal)
    except VmknetError as err:
        return Scan(number, vmk, portal, (), err.message)
    targets = []
    for target in found:
        luns = []
        for lun in target.luns:
            if lun.type != DIRECT_ACCESS:
                continue
            cap = libiscsi.capacity(ns, ifname, initiator, target.portal, target.iqn, lun.lun)
            if cap is not None:
                luns.append(ScannedLun(lun.lun, *cap))
        targets.append(ScannedTarget(target.iqn, target.portal, target.tpgt, tuple(luns)))
    return Scan(number, vmk, portal, tuple(targets))


def save(lab: str, host: str, adapter: str, scans: list[Scan]) -> None:
    path = cache_file(lab, host, adapter)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps([asdict(s) for s in scans]), encoding="utf-8")
    tmp.replace(path)  # atomic: a path list never reads half a rescan


def load(lab: str, host: str, adapter: str) -> list[Scan]:
    """The last rescan's result; [] before the first rescan (ESXi lists no paths then)."""
    try:
        raw = json.loads(cache_file(lab, host, adapter).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return []
    except (OSError, ValueError) as err:
        raise NotFound(f"The last rescan of {adapter} cannot be read ({err}): rescan with "
                       f"'esxcli storage core adapter rescan -A {adapter}'") from None
    return [Scan(s["channel"], s["vmk"], s["sendtarget"],
                 tuple(ScannedTarget(t["iqn"], t["portal"], t["tpgt"],
                                     tuple(ScannedLun(**lun) for lun in t["luns"]))
                       for t in s["targets"]), s.get("error")) for s in raw]


def path_states(dc: Datacenter, lab: str, host: str, adapter: str
                ) -> list[tuple[StoragePath, str]]:
    """Each path of the last rescan with its state now: active or dead (a real login test)."""
    sw = software_adapter(dc, host, adapter)
    found = paths(adapter, load(lab, host, adapter))
    where = {vmk: (ns, ifname) for _, vmk, ns, ifname in channels(dc, lab, host, sw)}
    initiator = initiator_name(host)

    def state(p: StoragePath) -> str:
        if p.vmk not in where:
            return "dead"  # unbound since the rescan: no session can use it
        ns, ifname = where[p.vmk]
        ok = libiscsi.capacity(ns, ifname, initiator, p.portal, p.iqn, p.lun)
        return "active" if ok is not None else "dead"

    with ThreadPoolExecutor(max_workers=MAX_WORKERS) as pool:
        states = list(pool.map(state, found))
    return list(zip(found, states, strict=True))


def path_session(dc: Datacenter, lab: str, host: str, path: StoragePath,
                 timeout: float = libiscsi.LOGIN_TIMEOUT) -> Session:
    """vmknet's own initiator logged in over `path`: from its adapter's stack, interface and
    address (IscsiError when the path is dead)."""
    sw = software_adapter(dc, host, path.adapter)
    for channel, vmk, ns, ifname in channels(dc, lab, host, sw):
        if channel == path.channel and vmk == path.vmk:
            nic = dc.host(host).vmknics[vmk] if vmk is not None else None
            source = nic.ipv4.address if nic is not None else None
            return Session.open(ns, ifname, str(source.ip) if source is not None else None,
                                path.portal, initiator_name(host), path.iqn, timeout)
    raise NotFound(f"Path {path.runtime_name} is not bound on {host} any more: rescan "
                   f"{path.adapter}", path=path.runtime_name)
