"""Cold migration and cloning of a powered-off VM: its files cross hosts over NFC.

Order of a cold migration: copy every file to the target's staging directory (verified),
rename it into place, move the placement record, then remove the source files. Until the
rename nothing at the target is the VM and the source is untouched; a failure before it
leaves the source exactly as it was.
"""

from __future__ import annotations

import shutil
import time

from ..errors import InvalidArgument
from ..model import Datacenter
from ..traffic.place import LabRef, lab_name
from ..vm.disk import DiskSpec, check_host
from . import placement
from .files import read_vmx, running, vm_dir, write_vmx
from .placement import Placement
from .report import MoveReport
from .transfer import Progress, ServerHook, commit, copy_vm


def migrate(dc: Datacenter, lab: LabRef, vm: str, target: str, *,
            datastore: str | None = None, progress: Progress | None = None,
            resume: bool = True, bandwidth_limit: float | None = None,
            server_hook: ServerHook | None = None) -> MoveReport:
    """Move powered-off `vm` (files, placement) to `target` [datastore]; raises on failure
    (NoPath before anything moved, DataplaneError of a broken copy) with the source intact."""
    name = lab_name(lab)
    src = placement.load(name, vm)
    if running(name, vm) is not None:
        raise InvalidArgument(f"VM {vm} is powered on: power it off, or use "
                              f"'vmknet vmotion {vm} --to {target} --datastore ...'", vm=vm)
    ds = datastore or src.datastore
    if target == src.host:
        raise InvalidArgument(f"VM {vm}'s files are already on {target}; pick another host")
    vmx = read_vmx(src)
    shared = DiskSpec.from_dict(vmx.shared_disk) if vmx.shared_disk else None
    if shared is not None:
        check_host(dc, name, target, shared)  # STO-5: the target must see the disk itself
    start = time.monotonic()
    reports, staging, final = copy_vm(dc, src, vmx, target, ds, progress=progress,
                                      resume=resume, bandwidth_limit=bandwidth_limit,
                                      server_hook=server_hook)
    copied = time.monotonic() - start
    old_dir = vm_dir(src)
    commit(staging, final)
    placement.save(Placement(vm, name, target, ds, src.base))
    shutil.rmtree(old_dir)  # a cold migration moves: the source files go once the target has them
    why = "files verified at the target, source files removed"
    if shared is not None:  # only the registration (the configuration) moved: STO-5
        why = (f"registration moved, disk {shared.text()} stays on the shared datastore: "
               "0 disk bytes copied")
    return MoveReport("migrate", vm, vm, f"{src.host}:[{src.datastore}]", f"{target}:[{ds}]",
                      True, why, time.monotonic() - start, copied, reports,
                      shared_disks=[shared.text()] if shared is not None else [])


def clone(dc: Datacenter, lab: LabRef, vm: str, target: str, new: str, *,
          datastore: str | None = None, progress: Progress | None = None,
          resume: bool = True, bandwidth_limit: float | None = None,
          server_hook: ServerHook | None = None) -> MoveReport:
    """A copy of `vm`'s files named `new` on `target`; the source VM keeps its files.

    Its disks are only read, so a running VM can be cloned too (its disks change only by
    guest writes through this module, not by the VM process)."""
    name = lab_name(lab)
    src = placement.load(name, vm)
    if placement.find(name, new) is not None:
        raise InvalidArgument(f"VM {new} already exists in lab {name}", vm=new)
    ds = datastore or src.datastore
    if target == src.host:
        raise InvalidArgument("A clone goes to another host (NFC copies between hosts)")
    vmx = read_vmx(src)
    if vmx.shared_disk:
        raise InvalidArgument(f"VM {vm}'s disk is on a shared datastore: a clone would share "
                              "it (copy the disk first; not done yet)", vm=vm)
    renamed, mapping = vmx.renamed(new)
    start = time.monotonic()
    reports, staging, final = copy_vm(dc, src, vmx, target, ds, mapping=mapping,
                                      progress=progress, resume=resume,
                                      bandwidth_limit=bandwidth_limit, server_hook=server_hook)
    copied = time.monotonic() - start
    # The target's agent registers the clone: its configuration names its own files.
    write_vmx(staging, renamed)
    commit(staging, final)
    placement.save(Placement(new, name, target, ds, src.base))
    return MoveReport("clone", vm, new, f"{src.host}:[{src.datastore}]", f"{target}:[{ds}]",
                      True, "clone verified at the target, source kept",
                      time.monotonic() - start, copied, reports)
