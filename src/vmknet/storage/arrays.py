"""The storage arrays of a lab: a real iSCSI target per array namespace, up and down (STO-6).

    started = start(lab, dc)     # lab up, after the namespaces exist: tgtd + targets + LUNs,
                                 # then STP settles on the storage ports (a rescan finds them)
    stop(lab)                    # lab down, before the namespaces go: even after a crash

Backing files are sparse files under /run/vmknet/labs/<lab>/arrays/<array>/,
so a 64 GiB LUN costs only the blocks written to it, and they go with the lab.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from ..dataplane import naming
from ..dataplane.render import render_index
from ..lab.registry import run_dir
from ..lab.stp import wait_converged
from ..model import Datacenter, StorageArray
from ..paths import inside
from . import tgt

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


def arrays_dir(lab: str) -> Path:
    return run_dir() / lab / "arrays"


def backing_file(lab: str, array: str, tid: int, lun: int) -> Path:
    """`<run>/labs/<lab>/arrays/<array>/t<tid>-lun<lun>.img` (SEC-5: names stay inside)."""
    return inside(arrays_dir(lab), array, f"t{tid}-lun{lun}.img")


def start(lab: str, dc: Datacenter) -> list[StartedArray]:
    """Start every array of `dc` that is not running yet.

    All or nothing: on a failure the targets this call started are stopped
    (ones that ran before it serve on); `lab down` removes their files.
    """
    started: list[StartedArray] = []
    before = set(tgt.lab_pids(lab))
    try:
        for name in sorted(dc.physical.storage_arrays):
            started.append(_start_one(lab, name, dc.physical.storage_arrays[name]))
    except BaseException:
        new = [pid for pid in tgt.lab_pids(lab) if pid not in before]
        tgt.stop_pids(new, *[p for p in map(tgt.port_of, new) if p is not None])
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
    running = [pid for pid in tgt.lab_pids(lab) if tgt.port_of(pid) == port]
    if running:
        # `lab up` again on the lab's own store: the target serves on, its data kept.
        return StartedArray(name, ns, running[0], port, len(targets), luns)
    proc = tgt.start(ns, port, folder / "tgtd.pid", folder / "tgtd.log")
    for tid, target in enumerate(targets, start=1):
        tgt.add_target(port, tid, target.iqn)
        for lun in target.luns:
            path = backing_file(lab, name, tid, lun.id)
            with path.open("ab") as f:  # sparse, and a file kept from before keeps its data
                f.truncate(int(lun.size))
            tgt.add_lun(port, tid, lun.id, path)
        tgt.allow_all(port, tid)
    return StartedArray(name, ns, proc.pid, port, len(targets), luns)


def stop(lab: str) -> list[int]:
    """Kill the lab's tgtds (found in /proc), remove their sockets and backing files."""
    pids = tgt.lab_pids(lab)
    ports = [p for p in (tgt.port_of(pid) for pid in pids) if p is not None]
    tgt.stop_pids(pids, *ports)
    folder = arrays_dir(lab)
    if folder.is_dir():
        for entry in os.listdir(folder):
            tgt.forget_port(tgt.control_port(lab, entry))  # a tgtd killed earlier: its sockets
        shutil.rmtree(folder, ignore_errors=True)
    return pids
