"""A VM's files on a datastore: create (sparse disks), read/write the configuration,
guest writes into the current disk and reads through the disk chain, power on/off.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
from dataclasses import replace
from pathlib import Path

from ..errors import AlreadyExists, InvalidArgument, VmknetError
from ..model import Datacenter
from ..nfc import Datastores
from ..nfc.files import data_ranges
from ..paths import inside
from ..vm import manage, registry
from ..vm.disk import DiskSpec, kind_of, located
from ..vm.registry import VmRecord
from . import placement
from .layout import GRAIN, Vmx, base_disk
from .placement import Placement

DEFAULT_DATASTORE = "ds1"


def stores_of(p: Placement) -> Datastores:
    return Datastores(Path(p.base))


def vm_dir(p: Placement) -> Path:
    return inside(stores_of(p).root(p.lab, p.host, p.datastore), p.vm)  # SEC-5


def read_vmx(p: Placement) -> Vmx:
    return Vmx.from_json(inside(vm_dir(p), f"{p.vm}.vmx").read_text("utf-8"))


def write_vmx(folder: Path, vmx: Vmx) -> None:
    path = folder / vmx.vmx_file
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(vmx.to_json(), encoding="utf-8")
    os.replace(tmp, path)  # the configuration changes atomically (snapshots, revert)


def running(lab: str, vm: str) -> VmRecord | None:
    rec = next((r for r in registry.records(lab) if r.name == vm), None)
    return rec if rec is not None and registry.alive(rec.pid) else None


def new_disk(path: Path, size: int, data: int = 0, seed: int = 1) -> None:
    """A sparse disk: truncate to `size`, then `data` bytes of guest data spread over it."""
    with open(path, "xb") as f:
        f.truncate(size)
        pieces = max(0, min(data, size) // GRAIN)
        for i in range(pieces):
            f.seek((i * (size // pieces)) // GRAIN * GRAIN)
            f.write(_pattern(seed, i))


def _pattern(seed: int, i: int) -> bytes:
    # Deterministic, incompressible guest data: the same seed gives the same disk.
    block = hashlib.shake_256(f"{seed}:{i}".encode()).digest(4096)
    return block * (GRAIN // 4096)


def create(dc: Datacenter, lab: str, vm: str, host: str, *, disk: int, memory: int,
           dirty_rate: int, seed: int = 1, datastore: str = DEFAULT_DATASTORE,
           disk_data: int = 4 << 20, stores: Datastores | None = None) -> Placement:
    """The VM's files on `host`'s datastore (made on demand) and its placement record."""
    if host not in dc.hosts:
        raise InvalidArgument(f"Host {host} is not in the inventory", host=host)
    if disk <= 0 or disk % GRAIN:
        raise InvalidArgument(f"The disk size must be a positive multiple of {GRAIN} bytes")
    if placement.find(lab, vm) is not None:
        raise AlreadyExists(f"VM {vm} already has files in lab {lab}", vm=vm)
    stores = stores or Datastores.default()
    folder = inside(stores.create(lab, host, datastore), vm)  # SEC-5
    if folder.exists():
        raise AlreadyExists(f"{host}:[{datastore}] {vm}/ already exists", vm=vm)
    folder.mkdir()
    try:
        vmx = Vmx(vm, memory, dirty_rate, seed, disk, base_disk(vm))
        new_disk(folder / vmx.disk, disk, disk_data, seed)
        write_vmx(folder, vmx)
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    p = Placement(vm, lab, host, datastore, str(stores.base))
    placement.save(p)
    return p


def create_attached(dc: Datacenter, lab: str, vm: str, host: str, *, disk: DiskSpec,
                    memory: int, dirty_rate: int, seed: int = 1, disk_rate: int = 20,
                    datastore: str = DEFAULT_DATASTORE,
                    stores: Datastores | None = None) -> tuple[Placement, DiskSpec]:
    """A VM whose disk is `disk` (a LUN, or a file on any datastore `host` sees), opened by
    the VM process itself: its configuration on `host`:[datastore], its placement record.

    The disk's kind is resolved here (vm.disk.located: refused when `host` does not see it).
    """
    if host not in dc.hosts:
        raise InvalidArgument(f"Host {host} is not in the inventory", host=host)
    if placement.find(lab, vm) is not None:
        raise AlreadyExists(f"VM {vm} already has files in lab {lab}", vm=vm)
    stores = stores or Datastores.default()
    local = kind_of(dc, host, disk) == "local"
    spec = located(dc, lab, host, disk,
                   stores.create(lab, host, disk.datastore) if local else None)
    folder = inside(stores.create(lab, host, datastore), vm)  # SEC-5
    if folder.exists():
        raise AlreadyExists(f"{host}:[{datastore}] {vm}/ already exists", vm=vm)
    folder.mkdir()
    try:
        write_vmx(folder, Vmx(vm, memory, dirty_rate, seed, 0, shared_disk=spec.to_dict(),
                              disk_rate=disk_rate))
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    p = Placement(vm, lab, host, datastore, str(stores.base))
    placement.save(p)
    return p, spec


def power_on(dc: Datacenter, lab: str, vm: str) -> VmRecord:
    """Boot the VM from its configuration on the host that holds its files."""
    p = placement.load(lab, vm)
    vmx = read_vmx(p)
    disk = DiskSpec.from_dict(vmx.shared_disk) if vmx.shared_disk else None
    return manage.create(dc, lab, vm, p.host, vmx.memory, vmx.dirty_rate, vmx.seed,
                         disk=disk, disk_rate=vmx.disk_rate, disk_seq=vmx.disk_seq)


def power_off(lab: str, vm: str) -> Placement:
    """Stop the VM's process; its files and placement stay (a powered-off VM)."""
    p = placement.load(lab, vm)
    if running(lab, vm) is not None:
        vmx = read_vmx(p)
        seq = None
        if vmx.shared_disk:  # the guest's disk stream goes on from here at the next boot
            with contextlib.suppress(VmknetError, OSError, KeyError, TypeError, ValueError):
                seq = int(manage.status(lab, vm)["disk"]["seq"])
        manage.destroy(lab, vm)  # the VM process flushes and closes its disk as it exits
        if seq is not None:
            write_vmx(vm_dir(p), replace(vmx, disk_seq=seq))
    return p


def delete(lab: str, vm: str) -> None:
    """Power off, remove the files and forget the VM."""
    p = power_off(lab, vm)
    shutil.rmtree(vm_dir(p), ignore_errors=True)
    placement.remove(lab, vm)


def guest_write(p: Placement, offset: int, data: bytes) -> None:
    """A guest write: whole grains into the current disk (a delta after a snapshot)."""
    if offset % GRAIN or len(data) % GRAIN:
        raise InvalidArgument(f"Guest writes cover whole grains ({GRAIN} bytes)")
    vmx = read_vmx(p)
    if offset + len(data) > vmx.disk_size:
        raise InvalidArgument("Write beyond the end of the disk")
    fd = os.open(vm_dir(p) / vmx.disk, os.O_WRONLY)
    try:
        os.pwrite(fd, data, offset)
    finally:
        os.close(fd)


def logical_digest(p: Placement, disk: str | None = None) -> str:
    """blake2b of what the guest sees: each grain from the first disk in the chain that
    has data there (holes fall through to the parent, the base's holes read as zeros)."""
    vmx = read_vmx(p)
    folder = vm_dir(p)
    fds = [os.open(folder / d, os.O_RDONLY) for d in vmx.chain(disk)]
    try:
        owner: dict[int, int] = {}
        for level in reversed(range(len(fds))):  # base first, leaves override
            for start, length in data_ranges(fds[level], vmx.disk_size):
                for grain in range(start // GRAIN, -(-(start + length) // GRAIN)):
                    owner[grain] = level
        h = hashlib.blake2b()
        zero = bytes(GRAIN)
        for grain in range(vmx.disk_size // GRAIN):
            at = owner.get(grain)
            h.update(zero if at is None else os.pread(fds[at], GRAIN, grain * GRAIN))
        return h.hexdigest()
    finally:
        for fd in fds:
            os.close(fd)
