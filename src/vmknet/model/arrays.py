"""Storage arrays of the physical network: iSCSI targets that a lab serves for real (STO-6).

An array is a box on the physical switch fabric, like a router: interfaces on
VLAN segments with addresses, iSCSI targets with their LUNs and NFS exports. `lab up`
gives each array a namespace and a real target (Debian's tgtd) serving sparse
backing files under the lab's run directory (vmknet.storage.arrays).

    physical:
      storageArrays:
        array01:
          interfaces:
            - {vlan: 30, addresses: [198.18.30.100/24]}
          iscsi:
            targets:
              - iqn: iqn.2026-11.com.example:array01.lun-a
                luns: [{id: 1, size: 256MiB}]
          nfs:
            exports: [{path: /share}]     # nfs-ganesha, NFS 3 (own rpcbind) and 4.0

Every refusal here is one line that names STO-6.
"""

from __future__ import annotations

import re
from ipaddress import IPv4Interface, IPv4Network
from typing import Annotated

from pydantic import ByteSize, Field, field_validator, model_validator

from .base import VmknetModel

ArrayName = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]{0,31}$")]
LAB_NETWORK = IPv4Network("198.18.0.0/15")  # the only addresses a lab may use (LAB.md)
BLOCK = 512
MIN_LUN_SIZE = 1 << 20  # 1 MiB
MAX_LUN_SIZE = 64 << 30  # 64 GiB: backing files are sparse, only written blocks use memory
MAX_INTERFACES = 8
# RFC 3720 3.2.6.3.1: iqn.<yyyy-mm>.<reversed domain>[:<unique>], lower case.
_LABEL = r"[a-z0-9](?:[a-z0-9-]*[a-z0-9])?"
IQN = re.compile(rf"iqn\.\d{{4}}-(?:0[1-9]|1[0-2])\.{_LABEL}(?:\.{_LABEL})*(?::[a-z0-9.:_-]+)?")
MAX_IQN = 223  # RFC 3720: an iSCSI name is at most 223 bytes
EXPORT_PATH = re.compile(r"/[A-Za-z0-9_-][A-Za-z0-9._-]{0,63}")  # no "..": stays in its folder
MAX_EXPORTS = 16


def lab_address_problem(iface: IPv4Interface) -> str | None:
    """Why `iface` cannot be an array address, or None (STO-6)."""
    ip, net = iface.ip, iface.network
    if ip not in LAB_NETWORK:
        return f"{iface} is not in {LAB_NETWORK}: a lab uses benchmarking addresses only"
    if net.prefixlen < 31 and ip in (net.network_address, net.broadcast_address):
        return f"{iface} is the network or broadcast address of {net}"
    return None


class ArrayInterface(VmknetModel):
    vlan: int = Field(0, ge=0, le=4094)
    addresses: list[IPv4Interface] = Field(min_length=1)
    mtu: int = Field(9000, ge=1280, le=9000)

    @field_validator("addresses")
    @classmethod
    def _lab_addresses(cls, value: list[IPv4Interface]) -> list[IPv4Interface]:
        for iface in value:
            problem = lab_address_problem(iface)
            if problem is not None:
                raise ValueError(f"{problem} (STO-6)")
        return value


class Lun(VmknetModel):
    """One logical unit; LUN 0 is the target's own controller LUN (tgt's), so ids start at 1."""

    id: int = Field(ge=1, le=255)
    size: ByteSize  # "256MiB", "1GiB" or bytes

    @field_validator("size")
    @classmethod
    def _size(cls, value: ByteSize) -> ByteSize:
        if not MIN_LUN_SIZE <= value <= MAX_LUN_SIZE or value % BLOCK:
            raise ValueError(f"LUN size {int(value)} bytes: use a multiple of {BLOCK} bytes "
                             "from 1MiB to 64GiB (STO-6)")
        return value


class IscsiTarget(VmknetModel):
    iqn: str
    luns: list[Lun] = Field(min_length=1)

    @field_validator("iqn")
    @classmethod
    def _iqn(cls, value: str) -> str:
        if len(value) > MAX_IQN or not IQN.fullmatch(value):
            raise ValueError(f"{value[:60]!r} is not an iSCSI qualified name: use "
                             "iqn.yyyy-mm.reversed.domain[:name], lower case (STO-6)")
        return value

    @model_validator(mode="after")
    def _unique_luns(self) -> IscsiTarget:
        seen: set[int] = set()
        for lun in self.luns:
            if lun.id in seen:
                raise ValueError(f"target {self.iqn}: LUN {lun.id} is declared twice (STO-6)")
            seen.add(lun.id)
        return self


class IscsiService(VmknetModel):
    targets: list[IscsiTarget] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique_iqns(self) -> IscsiService:
        seen: set[str] = set()
        for target in self.targets:
            if target.iqn in seen:
                raise ValueError(f"target {target.iqn} is declared twice (STO-6)")
            seen.add(target.iqn)
        return self


class NfsExport(VmknetModel):
    """One NFS export: `path` is what clients mount (`-s /share`), served from a directory
    under the lab's run directory (nfs-ganesha, FSAL_VFS)."""

    path: str

    @field_validator("path")
    @classmethod
    def _path(cls, value: str) -> str:
        if not EXPORT_PATH.fullmatch(value):
            raise ValueError(f"export {value[:60]!r}: use one absolute path component such "
                             "as /share (letters, digits, '.', '_', '-') (STO-6)")
        return value

    @property
    def directory(self) -> str:
        """The export's directory name under the array's run directory."""
        return self.path.lstrip("/")


class NfsService(VmknetModel):
    exports: list[NfsExport] = Field(min_length=1, max_length=MAX_EXPORTS)

    @model_validator(mode="after")
    def _unique_paths(self) -> NfsService:
        seen: set[str] = set()
        for export in self.exports:
            if export.path in seen:
                raise ValueError(f"export {export.path} is declared twice (STO-6)")
            seen.add(export.path)
        return self


class StorageArray(VmknetModel):
    interfaces: list[ArrayInterface] = Field(min_length=1, max_length=MAX_INTERFACES)
    iscsi: IscsiService | None = None
    nfs: NfsService | None = None

    @model_validator(mode="after")
    def _one_subnet_per_interface(self) -> StorageArray:
        # Two interfaces in one subnet would make the array's replies leave by either: a
        # path's bytes must come back by the interface they arrived on.
        nets: dict[IPv4Network, int] = {}
        for i, iface in enumerate(self.interfaces):
            for address in iface.addresses:
                other = nets.setdefault(address.network, i)
                if other != i:
                    raise ValueError(f"interfaces {other} and {i} are both in "
                                     f"{address.network}: give each its own subnet (STO-6)")
        return self

    @property
    def addresses(self) -> list[IPv4Interface]:
        return [a for iface in self.interfaces for a in iface.addresses]

    @property
    def iqns(self) -> list[str]:
        return [] if self.iscsi is None else [t.iqn for t in self.iscsi.targets]

    @property
    def exports(self) -> list[str]:
        return [] if self.nfs is None else [e.path for e in self.nfs.exports]
