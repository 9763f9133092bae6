"""A VM's virtual disk: one interface (`BlockBackend`), a backend per datastore kind.

    spec = DiskSpec.parse("[nfs01] web01/web01-flat.vmdk", size=64 << 20)   # or
    spec = DiskSpec.parse("/vmfs/devices/disks/naa.6...", size=0)           # a LUN, raw (RDM)
    disk = open_disk(spec.located(kind_of(dc, "esx01", spec.datastore), ...), lab, host)
    disk.write(0, data); disk.read(0, 4096); disk.flush(); disk.close()

Kinds (`OPENERS`, a dict from datastore kind to opener, the registration point):
- `local`: a sparse file in a host's own datastore directory (not shared: no other host
  sees it, so a VM on it does not vMotion without a datastore change);
- `iscsi`: an iSCSI LUN used raw through the host's NMP device (storage/nmp.py: one
  session per path from each bound adapter, the device's PSP per I/O), like an RDM in
  physical compatibility mode. vmknet formats no VMFS on it: the disk is the LUN;
- `nfs`: a file `<vm>/<vm>-flat.vmdk` on an NFS datastore, through vmknet's NFS client
  (storage/nfsc) from the adapter that reaches the server (storage.nfs.open_datastore);
- `vsanDatastore`: left to vmknet.vsan (`register("vsan", opener, sees)`).

Every backend has the same five members (structural typing: implementations need not
import this module). A `DiskSpec` is plain data that travels: in the VM's record, on the
VM process's command line, in the device state of a vMotion.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Protocol

from ..errors import InvalidArgument, NotFound, RuleViolation
from ..model import Datacenter

DEVFS = "/vmfs/devices/disks/"  # ESXi's devfs path of a device: the raw LUN (RDM)
MAX_IO = 256 << 10  # bytes per SCSI command (the arrays' data segment, docs/storage.md)
_BRACKETED = re.compile(r"\[([A-Za-z0-9][A-Za-z0-9_.-]{0,63})\](?:\s+(\S.*))?")
_DEVICE = re.compile(r"naa\.[0-9a-f]{32}")
_PATH_PART = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")


class BlockBackend(Protocol):
    """What a VM's disk is to the VM: bytes at offsets, durable after flush."""

    size: int  # bytes

    def read(self, offset: int, length: int) -> bytes: ...

    def write(self, offset: int, data: bytes) -> None: ...

    def flush(self) -> None: ...  # durable when it returns

    def close(self) -> None: ...


@dataclass(frozen=True)
class DiskSpec:
    """Where a VM's disk is: `[datastore] path` (a file) or a device (a raw LUN)."""

    datastore: str  # datastore name, or the LUN's naa id for a raw LUN
    path: str  # inside the datastore; "" for a raw LUN
    size: int  # bytes (a raw LUN: the LUN's size, or less)
    kind: str = ""  # local | iscsi | nfs | vsan: resolved on the host that creates the VM
    location: str = ""  # local: the file's absolute path on its host
    owner: str = ""  # local: the host whose datastore directory holds the file

    @classmethod
    def parse(cls, text: str, size: int, vm: str = "") -> DiskSpec:
        """`[ds] dir/file.vmdk`, `[ds]` (default `<vm>/<vm>-flat.vmdk`) or a devfs path."""
        text = text.strip()
        if text.startswith(DEVFS):
            device = text[len(DEVFS):]
            if not _DEVICE.fullmatch(device):
                raise InvalidArgument(f"Disk {text!r}: a raw LUN is {DEVFS}naa.<32 hex digits>")
            return cls(device, "", size, "iscsi")
        match = _BRACKETED.fullmatch(text)
        if match is None:
            raise InvalidArgument(f"Disk {text[:80]!r}: use '[DATASTORE] DIR/FILE.vmdk' or "
                                  f"'{DEVFS}naa....' (a LUN, raw)")
        path = match.group(2) or (f"{vm}/{vm}-flat.vmdk" if vm else "")
        parts = path.split("/")
        if not path or len(parts) > 2 or not all(_PATH_PART.fullmatch(p) for p in parts) \
                or not path.endswith(".vmdk"):
            raise InvalidArgument(f"Disk {text[:80]!r}: the path is DIR/FILE.vmdk (letters, "
                                  "digits, '-', '_', '.'; no '..')")
        if size <= 0 or size % 512:
            raise InvalidArgument(f"Disk {text[:80]!r}: give --disk-size, a positive multiple "
                                  "of 512 bytes")
        return cls(match.group(1), path, size)

    def text(self) -> str:
        return f"{DEVFS}{self.datastore}" if self.kind == "iscsi" else \
            f"[{self.datastore}] {self.path}"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Any) -> DiskSpec:
        if not isinstance(data, dict):
            raise InvalidArgument("A disk spec is an object")
        try:
            spec = cls(**data)
        except TypeError as err:
            raise InvalidArgument(f"Not a disk spec: {err}") from None
        if not isinstance(spec.size, int) or spec.size < 0:
            raise InvalidArgument("A disk spec's size is a non-negative integer")
        return spec


# ------------------------------------------------------------------ kinds


@dataclass(frozen=True)
class DiskContext:
    """Where a disk is opened: the lab, the host, and the host's inventory when needed."""

    lab: str
    host: str
    datacenter: Callable[[], Datacenter]


Opener = Callable[[DiskSpec, DiskContext], BlockBackend]
Sees = Callable[[Datacenter, str, str, DiskSpec], str | None]  # (dc, lab, host, spec): why not

OPENERS: dict[str, Opener] = {}
SEES: dict[str, Sees] = {}


def register(kind: str, opener: Opener, sees: Sees) -> None:
    """Add a datastore kind: how a VM process opens a disk on it, and whether a host sees
    it (vMotion's and cold migration's compatibility check)."""
    OPENERS[kind] = opener
    SEES[kind] = sees


def kind_of(dc: Datacenter, host: str, spec: DiskSpec) -> str:
    """The kind of `spec`'s datastore as `host` sees it."""
    if spec.kind == "iscsi":
        return "iscsi"
    if spec.datastore in dc.host(host).storage.nfs:
        return "nfs"
    if spec.datastore == "vsanDatastore":
        return "vsan"
    return "local"


def located(dc: Datacenter, lab: str, host: str, spec: DiskSpec,
            local_root: Path | None = None) -> DiskSpec:
    """`spec` with its kind resolved on `host` (and, for a local file, its path under
    `local_root`, the host's datastore directory); refused when the kind is not there."""
    kind = kind_of(dc, host, spec)
    if kind not in OPENERS:
        raise NotFound(f"Disk {spec.text()}: datastore kind {kind} is not available here",
                       datastore=spec.datastore)
    local = kind == "local"
    if local and local_root is None:
        raise NotFound(f"Disk {spec.text()}: no datastore {spec.datastore} on {host}",
                       datastore=spec.datastore)
    out = replace(spec, kind=kind, location=str(local_root / spec.path) if local_root and local
                  else "", owner=host if local else "")
    if kind == "iscsi":
        lun = _lun_size(dc, lab, host, spec.datastore)
        if out.size == 0:
            out = replace(out, size=lun)
        if out.size > lun:
            raise InvalidArgument(f"Disk {spec.text()}: {out.size} bytes, the LUN has {lun}")
    why = SEES[kind](dc, lab, host, out)
    if why is not None:
        raise NotFound(f"Disk {out.text()}: {why}", datastore=spec.datastore, host=host)
    return out


def check_host(dc: Datacenter, lab: str, host: str, spec: DiskSpec) -> None:
    """vCenter's compatibility check: `host` must see the VM's disk (STO-5)."""
    sees = SEES.get(spec.kind)
    why = f"datastore kind {spec.kind!r} unknown" if sees is None else \
        sees(dc, lab, host, spec)
    if why is not None:
        raise RuleViolation("STO-5", f"Host {host} does not see the datastore of the VM's disk "
                            f"{spec.text()}: {why}", host=host, datastore=spec.datastore)


def open_disk(spec: DiskSpec, ctx: DiskContext) -> BlockBackend:
    opener = OPENERS.get(spec.kind)
    if opener is None:
        raise NotFound(f"Disk {spec.text()}: datastore kind {spec.kind!r} is not available",
                       datastore=spec.datastore)
    return opener(spec, ctx)


# ------------------------------------------------------------------ local files


class LocalFile:
    """A sparse file on a host's own datastore (pread/pwrite; fsync makes it durable)."""

    def __init__(self, path: str, size: int, create: bool = True) -> None:
        flags = os.O_RDWR | (os.O_CREAT if create else 0)
        self.fd = os.open(path, flags, 0o600)
        if os.fstat(self.fd).st_size < size:
            os.ftruncate(self.fd, size)  # a hole: no block is written until the guest does
        self.size = size

    def read(self, offset: int, length: int) -> bytes:
        _bounds(self.size, offset, length)
        return os.pread(self.fd, length, offset).ljust(length, b"\0")

    def write(self, offset: int, data: bytes) -> None:
        _bounds(self.size, offset, len(data))
        os.pwrite(self.fd, data, offset)

    def flush(self) -> None:
        os.fsync(self.fd)

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


def _open_local(spec: DiskSpec, ctx: DiskContext) -> BlockBackend:
    if not spec.location:
        raise NotFound(f"Disk {spec.text()} has no file on {ctx.host}")
    Path(spec.location).parent.mkdir(parents=True, exist_ok=True)
    return LocalFile(spec.location, spec.size)


def _sees_local(dc: Datacenter, lab: str, host: str, spec: DiskSpec) -> str | None:
    # A host's own datastore directory (a directory of this machine per host): no other
    # host mounts it, as no other ESXi host sees a local VMFS.
    if host == spec.owner:
        return None
    return f"[{spec.datastore}] is a local datastore of {spec.owner or 'another host'}"


# ------------------------------------------------------------------ iSCSI LUNs (raw)


class LunDisk:
    """A LUN through the host's NMP device; bytes to whole blocks (read-modify-write at the
    unaligned edges). Every WRITE is complete at the array when it returns (tgtd wrote it
    to its backing file), so `flush` waits for commands in flight and sends nothing."""

    def __init__(self, device: Any, block: int, size: int) -> None:
        self.device, self.block, self.size = device, block, size
        self._edges = threading.Lock()  # read-modify-write of a shared edge block

    def read(self, offset: int, length: int) -> bytes:
        _bounds(self.size, offset, length)
        first, end = offset // self.block, -(-(offset + length) // self.block)
        out = bytearray()
        per = MAX_IO // self.block
        for lba in range(first, end, per):
            out += self.device.read(lba, min(per, end - lba))
        skip = offset - first * self.block
        return bytes(out[skip:skip + length])

    def write(self, offset: int, data: bytes) -> None:
        _bounds(self.size, offset, len(data))
        if not data:
            return
        b = self.block
        head, tail = offset % b, (offset + len(data)) % b
        if head or tail:
            with self._edges:
                start = offset - head
                merged = bytearray(self.read(start, -(-(offset + len(data) - start) // b) * b))
                merged[head:head + len(data)] = data
                self._write_blocks(start // b, bytes(merged))
            return
        self._write_blocks(offset // b, data)

    def _write_blocks(self, lba: int, data: bytes) -> None:
        for at in range(0, len(data), MAX_IO):
            self.device.write(lba + at // self.block, data[at:at + MAX_IO])

    def flush(self) -> None:
        with self._edges:
            pass

    def close(self) -> None:
        self.device.close()


def _lun_size(dc: Datacenter, lab: str, host: str, device: str) -> int:
    from ..storage.nmp import device_paths

    found = device_paths(lab, dc, host, device)
    if not found:
        raise NotFound(f"Device {device} is not seen by {host}: rescan its iSCSI adapter "
                       "('esxcli storage core adapter rescan')", device=device, host=host)
    return found[0].size


def _open_lun(spec: DiskSpec, ctx: DiskContext) -> BlockBackend:
    from ..storage.nmp import device_paths, open_device

    dc = ctx.datacenter()
    found = device_paths(ctx.lab, dc, ctx.host, spec.datastore)
    device = open_device(dc, ctx.lab, ctx.host, spec.datastore)
    return LunDisk(device, found[0].block, spec.size)


def _sees_lun(dc: Datacenter, lab: str, host: str, spec: DiskSpec) -> str | None:
    from ..storage.nmp import device_paths

    if not device_paths(lab, dc, host, spec.datastore):
        return (f"{host} has no path to {spec.datastore} (not in its last rescan of the "
                "software iSCSI adapter)")
    return None


# ------------------------------------------------------------------ files on NFS datastores


class NfsDisk:
    """A file on an NFS datastore through vmknet's NFS client (storage/nfsc), mounted from
    the adapter that reaches the server; `flush` is NFS 3 COMMIT."""

    def __init__(self, mount: Any, file: Any, size: int) -> None:
        self.mount, self.file, self.size = mount, file, size

    def read(self, offset: int, length: int) -> bytes:
        _bounds(self.size, offset, length)
        return bytes(self.file.read(offset, length)).ljust(length, b"\0")

    def write(self, offset: int, data: bytes) -> None:
        _bounds(self.size, offset, len(data))
        self.file.write(offset, data)

    def flush(self) -> None:
        self.file.flush()

    def close(self) -> None:
        try:
            self.file.close()
        finally:
            self.mount.close()


def _open_nfs(spec: DiskSpec, ctx: DiskContext) -> BlockBackend:
    from ..storage.nfs import open_datastore

    mount = open_datastore(ctx.datacenter(), ctx.lab, ctx.host, spec.datastore)
    try:
        folder = spec.path.rpartition("/")[0]
        if folder:
            mount.mkdir(folder, exist_ok=True)
        file = mount.open_file(spec.path, create=True, size=spec.size)  # sparse
    except BaseException:
        mount.close()
        raise
    return NfsDisk(mount, file, spec.size)


def _sees_nfs(dc: Datacenter, lab: str, host: str, spec: DiskSpec) -> str | None:
    if spec.datastore not in dc.host(host).storage.nfs:
        return f"{host} does not mount NFS datastore {spec.datastore}"
    return None


def _bounds(size: int, offset: int, length: int) -> None:
    if offset < 0 or length < 0 or offset + length > size:
        raise InvalidArgument(f"I/O at {offset}+{length} outside the disk's {size} bytes")


def _open_vsan(spec: DiskSpec, ctx: DiskContext) -> BlockBackend:
    from ..vsan.datastore import open_disk

    return open_disk(ctx.datacenter(), ctx.lab, ctx.host, spec.path, spec.size)


def _sees_vsan(dc: Datacenter, lab: str, host: str, spec: DiskSpec) -> str | None:
    from ..vsan.datastore import sees

    return sees(dc, lab, host)


register("local", _open_local, _sees_local)
register("iscsi", _open_lun, _sees_lun)
register("nfs", _open_nfs, _sees_nfs)
register("vsan", _open_vsan, _sees_vsan)
