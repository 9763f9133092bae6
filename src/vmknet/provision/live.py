"""Live migration with a datastore change (long-distance vMotion's disk part).

The disks go over NFC on the provisioning adapters to a staging directory at the target,
then the memory goes over vMotion (vmotion.migrate, untouched); only when vMotion
completed does the VM's file location switch (rename at the target, placement record,
source files removed). If the copy or vMotion fails, the source keeps running with its
files and the staging directory is removed.

The simulated VM process does not write its disks (guest disk writes go through
provision.files.guest_write), so copying before the memory phase sees the final disk
content; a real host mirrors writes that race the copy (the svmotion mirror driver).
"""

from __future__ import annotations

import shutil
import time
from typing import Any

from ..errors import InvalidArgument
from ..model import Datacenter, Service
from ..resolve import resolve
from ..traffic.place import LabRef, lab_name
from ..vm.disk import DiskSpec
from . import placement
from .files import read_vmx, running, vm_dir
from .placement import Placement
from .report import MoveReport
from .transfer import Progress, ServerHook, commit, copy_vm


def vmotion(dc: Datacenter, lab: LabRef, vm: str, target: str, *, datastore: str,
            progress: Progress | None = None, bandwidth_limit: float | None = None,
            server_hook: ServerHook | None = None, **vmotion_options: Any) -> MoveReport:
    """Disks to `target`:[datastore] over NFC, then memory over vMotion; the report holds
    both (`vmotion` is the MigrationReport as a dict)."""
    from ..vmotion import migrate  # loads numpy/cryptography: only when asked

    name = lab_name(lab)
    src = placement.load(name, vm)
    if running(name, vm) is None:
        raise InvalidArgument(f"VM {vm} is powered off: use 'vmknet vm migrate'", vm=vm)
    if src.host == target:
        raise InvalidArgument(f"VM {vm} already runs on {target}", vm=vm)
    resolve(dc, Service.VMOTION, src.host, target)  # EX-5 / NoPath before the disks move
    start = time.monotonic()
    reports, staging, final = copy_vm(dc, src, read_vmx(src), target, datastore,
                                      progress=progress, bandwidth_limit=bandwidth_limit,
                                      server_hook=server_hook)
    copied = time.monotonic() - start
    try:
        memory = migrate(dc, lab, vm, target, **vmotion_options)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)  # the source runs on with its files
        raise
    out = MoveReport("vmotion", vm, vm, f"{src.host}:[{src.datastore}]",
                     f"{target}:[{datastore}]", memory.completed, memory.reason,
                     0.0, copied, reports, memory.to_dict())
    if memory.completed:
        old_dir = vm_dir(src)
        commit(staging, final)
        placement.save(Placement(vm, name, target, datastore, src.base))
        shutil.rmtree(old_dir)
    else:
        shutil.rmtree(staging, ignore_errors=True)
    out.seconds = time.monotonic() - start
    return out


def follow(dc: Datacenter, lab: LabRef, vm: str, target: str) -> MoveReport | None:
    """After a vMotion of a VM whose disk is on a shared datastore: its registration (the
    `.vmx`, over NFC on the provisioning adapters) follows it to `target`, the disk stays
    (STO-5), as a vMotion moves a VM's registration to the host that runs it. None when
    there is nothing to move (no files, files already there, or a disk of its own)."""
    name = lab_name(lab)
    src = placement.find(name, vm)
    if src is None or src.host == target:
        return None
    vmx = read_vmx(src)
    if not vmx.shared_disk:
        return None  # its disks are files of its own: `vmotion --datastore` moves them
    start = time.monotonic()
    reports, staging, final = copy_vm(dc, src, vmx, target, src.datastore)
    old_dir = vm_dir(src)
    commit(staging, final)
    placement.save(Placement(vm, name, target, src.datastore, src.base))
    shutil.rmtree(old_dir)
    disk = DiskSpec.from_dict(vmx.shared_disk).text()
    return MoveReport("register", vm, vm, f"{src.host}:[{src.datastore}]",
                      f"{target}:[{src.datastore}]", True,
                      f"registration followed the VM, disk {disk} stays on the shared "
                      "datastore: 0 disk bytes copied", time.monotonic() - start,
                      time.monotonic() - start, reports, shared_disks=[disk])
