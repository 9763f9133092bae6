"""Snapshots of a VM's disks: create (freeze the current disk, writes go to a new sparse
delta), list, revert (a fresh delta on top of the snapshot's disk). Disk state only:
the simulated VM's memory is not part of a snapshot.
"""

from __future__ import annotations

import contextlib
import os
import time

from ..errors import InvalidArgument
from . import placement
from .files import read_vmx, vm_dir, write_vmx
from .layout import Snapshot


def create(lab: str, vm: str, name: str) -> Snapshot:
    p = placement.load(lab, vm)
    old = read_vmx(p)
    vmx = old.with_snapshot(name, time.time())
    folder = vm_dir(p)
    with open(folder / vmx.disk, "xb") as f:
        f.truncate(vmx.disk_size)  # an empty delta: all hole, every read falls through
    try:
        write_vmx(folder, vmx)  # from here on the old disk is read-only
    except BaseException:
        os.unlink(folder / vmx.disk)
        raise
    return vmx.snapshot(name)


def listing(lab: str, vm: str) -> tuple[list[Snapshot], str]:
    """The snapshots (oldest first) and the current disk."""
    vmx = read_vmx(placement.load(lab, vm))
    return list(vmx.snapshots), vmx.disk


def revert(lab: str, vm: str, name: str | None = None) -> Snapshot:
    """Back to snapshot `name` (default: the newest); the current delta is discarded."""
    p = placement.load(lab, vm)
    old = read_vmx(p)
    if not old.snapshots:
        raise InvalidArgument(f"VM {vm} has no snapshot", vm=vm)
    snap = old.snapshot(name) if name else old.snapshots[-1]
    vmx, discarded = old.reverted(snap.name)
    folder = vm_dir(p)
    with open(folder / vmx.disk, "xb") as f:
        f.truncate(vmx.disk_size)
    write_vmx(folder, vmx)
    if discarded not in vmx.disks():  # only the current delta, never a snapshot's disk
        with contextlib.suppress(FileNotFoundError):
            os.unlink(folder / discarded)
    return snap
