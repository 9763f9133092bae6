"""The storage arrays of a lab: a real iSCSI target and NFS server per array namespace (STO-6).

    started = start(lab, dc)     # lab up, after the namespaces exist: tgtd + targets + LUNs,
                                 # nfs-ganesha + rpcbind for the exports, then STP settles on
                                 # the storage ports (a rescan or a mount finds them)
    stop(lab)                    # lab down, before the namespaces go: even after a crash

Backing files are sparse files under /run/vmknet/labs/<lab>/arrays/<array>/,
so a 64 GiB LUN costs only the blocks written to it, and they go with the lab;
an export is the directory `exports/<name>` beside them.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from ..dataplane import naming
from ..dataplane.linux import netns
from ..dataplane.render import render_index
from ..lab.registry import run_dir
from ..lab.stp import wait_converged
from ..model import Datacenter, StorageArray
from ..paths import inside
from . import ganesha, tgt

CONVERGE_TIMEOUT = 30.0  # s: STP's listening + learning is 2 x forward delay, well below
_BOUND_ROLES = frozenset({"adapter-port", "wire-host", "wire-pnet"})


@dataclass(frozen=True, slots=True)
class StartedArray:
    name: str
    ns: str
    pid: int
    control_port: int
    targets: int
    luns: int
    exports: int = 0


def arrays_dir(lab: str) -> Path:
    return run_dir() / lab / "arrays"


def backing_file(lab: str, array: str, tid: int, lun: int) -> Path:
    """`<run>/labs/<lab>/arrays/<array>/t<tid>-lun<lun>.img` (SEC-5: names stay inside)."""
    return inside(arrays_dir(lab), array, f"t{tid}-lun{lun}.img")


def export_dir(lab: str, array: str, export: str) -> Path:
    """`<run>/labs/<lab>/arrays/<array>/exports/<export>`: an NFS export's files."""
    return inside(arrays_dir(lab), array, "exports", export.lstrip("/"))


def start(lab: str, dc: Datacenter) -> list[StartedArray]:
    """Start every array of `dc` that is not running yet.

    All or nothing: on a failure the targets this call started are stopped
    (ones that ran before it serve on); `lab down` removes their files.
    """
    started: list[StartedArray] = []
    before = set(tgt.lab_pids(lab))
    nfs_before = {name for name in dc.physical.storage_arrays if _nfs_running(lab, name)}
    try:
        for name in sorted(dc.physical.storage_arrays):
            started.append(_start_one(lab, name, dc.physical.storage_arrays[name]))
    except BaseException:
        new = [pid for pid in tgt.lab_pids(lab) if pid not in before]
        tgt.stop_pids(new, *[p for p in map(tgt.port_of, new) if p is not None])
        for name in dc.physical.storage_arrays:
            if name not in nfs_before:
                _stop_nfs(lab, naming.array_ns(lab, name))
        raise
    if started:
        wait_converged(storage_ports(dc, lab), CONVERGE_TIMEOUT)
    return started


def storage_ports(dc: Datacenter, lab: str) -> list[tuple[str, str]]:
    """Bridge ports an iSCSI frame crosses: the arrays' and the iSCSI-bound adapters' wires."""
    bound = {(name, vmk) for name, host in dc.hosts.items() if host.storage.iscsi is not None
             for vmk in host.storage.iscsi.bound_vmknics}
    return sorted(key for key, end in render_index(dc, lab).items()
                  if end.role == "array-port"
                  or (end.role in _BOUND_ROLES and (end.host, end.vmk) in bound))


def _start_one(lab: str, name: str, array: StorageArray) -> StartedArray:
    ns = naming.array_ns(lab, name)
    folder = inside(arrays_dir(lab), name)
    folder.mkdir(parents=True, exist_ok=True)
    port = tgt.control_port(lab, name)
    targets = [] if array.iscsi is None else array.iscsi.targets
    luns = sum(len(t.luns) for t in targets)
    exports = [] if array.nfs is None else [e.path for e in array.nfs.exports]
    if exports and not _nfs_running(lab, name):
        # A ganesha that died left its rpcbind (in a mount namespace of its own) holding
        # port 111 with stale registrations: end it, so the new pair registers afresh.
        ganesha.stop_in(ns, [])
        ganesha.start(ns, folder, [(e, export_dir(lab, name, e)) for e in exports])
    running = [pid for pid in tgt.lab_pids(lab) if tgt.port_of(pid) == port]
    if running:
        # `lab up` again on the lab's own store: the target serves on, its data kept.
        return StartedArray(name, ns, running[0], port, len(targets), luns, len(exports))
    proc = tgt.start(ns, port, folder / "tgtd.pid", folder / "tgtd.log")
    for tid, target in enumerate(targets, start=1):
        tgt.add_target(port, tid, target.iqn)
        tgt.tune(port, tid)
        for lun in target.luns:
            path = backing_file(lab, name, tid, lun.id)
            with path.open("ab") as f:  # sparse, and a file kept from before keeps its data
                f.truncate(int(lun.size))
            tgt.add_lun(port, tid, lun.id, path)
        tgt.allow_all(port, tid)
    return StartedArray(name, ns, proc.pid, port, len(targets), luns, len(exports))


def stopped(lab: str, dc: Datacenter) -> list[str]:
    """What of the arrays' servers is not running ("nfs-ganesha of array01", "tgtd of ...");
    `start` starts exactly these again (`lab status --repair`)."""
    out: list[str] = []
    tgtd_ports = {tgt.port_of(pid) for pid in tgt.lab_pids(lab)}
    for name, array in sorted(dc.physical.storage_arrays.items()):
        if array.nfs is not None and array.nfs.exports and not _nfs_running(lab, name):
            out.append(f"nfs-ganesha of {name}")
        if tgt.control_port(lab, name) not in tgtd_ports:
            out.append(f"tgtd of {name}")
    return out


def _nfs_running(lab: str, array: str) -> bool:
    conf = str(inside(arrays_dir(lab), array, "ganesha.conf")).encode()
    return any(conf in argv for argv in map(_argv, ganesha.lab_pids(lab)))


def _argv(pid: int) -> list[bytes]:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().split(b"\0")
    except OSError:
        return []


def _stop_nfs(lab: str, ns: str) -> None:
    mine = [pid for pid in ganesha.lab_pids(lab) if pid in ganesha.ns_pids(ns)]
    ganesha.stop_in(ns, mine)


def stop(lab: str) -> list[int]:
    """Kill the lab's tgtds and ganeshas (found in /proc) and the arrays' rpcbinds, remove the
    tgtds' sockets and the backing files and exports."""
    ganesha.stop_in(None, ganesha.lab_pids(lab))  # by command line: even without a namespace
    for ns in netns.listed(f"{naming.prefix(lab)}{naming.ARRAY}."):
        ganesha.stop_in(ns, [])  # the rpcbinds: found in the array's namespace
    pids = tgt.lab_pids(lab)
    ports = [p for p in (tgt.port_of(pid) for pid in pids) if p is not None]
    tgt.stop_pids(pids, *ports)
    folder = arrays_dir(lab)
    if folder.is_dir():
        for entry in os.listdir(folder):
            tgt.forget_port(tgt.control_port(lab, entry))  # a tgtd killed earlier: its sockets
        shutil.rmtree(folder, ignore_errors=True)
    return pids
