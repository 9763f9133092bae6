"""A VM's files (pure): the configuration (`<vm>.vmx`, JSON), its disk chain and snapshots.

    <datastore>/<vm>/<vm>.vmx            memory, dirty rate, seed, disk size, current disk,
                                         disk parents, snapshots
    <datastore>/<vm>/<vm>.vmdk           base disk: a sparse file of the disk's size
    <datastore>/<vm>/<vm>-000001.vmdk    delta disk: written grains only, the rest is a hole

A delta is as large as the base and sparse: a grain with data in it overrides its parent
(the hole means "look at the parent"), the way VMFS sparse deltas redirect written grains.
One file (the .vmx) holds the snapshot tree too so that a VM's metadata changes atomically
(write a temporary, rename): a half-written snapshot never exists.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from ..errors import InvalidArgument, NotFound

GRAIN = 64 << 10  # the unit a guest write covers in a delta (VMFS sparse: grains)


@dataclass(frozen=True)
class Snapshot:
    name: str
    disk: str  # the disk that became read-only when the snapshot was taken
    created: float


@dataclass(frozen=True)
class Vmx:
    name: str
    memory: int
    dirty_rate: int
    seed: int
    disk_size: int  # bytes; 0: a VM without a disk
    disk: str = ""  # the current (writable) disk file
    parents: dict[str, str] = field(default_factory=dict)  # delta -> its parent disk
    snapshots: list[Snapshot] = field(default_factory=list)
    next_delta: int = 1
    # A disk on a datastore the VM process opens itself (vm.disk.DiskSpec as a dict): an
    # iSCSI LUN or a file on an NFS datastore; not one of the VM's files (a shared
    # datastore's disk never crosses hosts), so files() leaves it out.
    shared_disk: dict[str, Any] | None = None
    disk_rate: int = 20  # the guest's disk writes per second (each read back)
    disk_seq: int = 0  # where the guest's disk stream stood at power-off (vm.diskio)

    @property
    def vmx_file(self) -> str:
        return f"{self.name}.vmx"

    def chain(self, disk: str | None = None) -> list[str]:
        """The disk and its ancestors, leaf first (the order a read looks in)."""
        out = [disk or self.disk] if (disk or self.disk) else []
        while out and out[-1] in self.parents:
            out.append(self.parents[out[-1]])
        return out

    def disks(self) -> list[str]:
        """Every disk file the VM owns (base, deltas of every snapshot, current)."""
        seen = set(self.chain()) | set(self.parents) | set(self.parents.values())
        seen |= {s.disk for s in self.snapshots}
        return sorted(d for d in seen if d)

    def files(self) -> list[str]:
        """Every file of the VM: disks first, the configuration last (it names them)."""
        return [*self.disks(), self.vmx_file]

    def snapshot(self, name: str) -> Snapshot:
        for snap in self.snapshots:
            if snap.name == name:
                return snap
        raise NotFound(f"VM {self.name} has no snapshot {name!r}", vm=self.name)

    def with_snapshot(self, name: str, now: float) -> Vmx:
        """Freeze the current disk under snapshot `name`; writes go to a new delta."""
        if not self.disk:
            raise InvalidArgument(f"VM {self.name} has no disk to snapshot", vm=self.name)
        if any(s.name == name for s in self.snapshots):
            raise InvalidArgument(f"VM {self.name} already has a snapshot {name!r}")
        delta = self.delta_name(self.next_delta)
        return replace(self, disk=delta, parents={**self.parents, delta: self.disk},
                       snapshots=[*self.snapshots, Snapshot(name, self.disk, now)],
                       next_delta=self.next_delta + 1)

    def reverted(self, name: str) -> tuple[Vmx, str]:
        """A fresh delta on top of the snapshot's disk; returns the discarded current disk.

        The discarded delta is only the current one: later snapshots keep their disks
        (a snapshot tree, as vSphere keeps it)."""
        snap = self.snapshot(name)
        delta = self.delta_name(self.next_delta)
        parents = {k: v for k, v in self.parents.items() if k != self.disk}
        parents[delta] = snap.disk
        return replace(self, disk=delta, parents=parents,
                       next_delta=self.next_delta + 1), self.disk

    def delta_name(self, n: int) -> str:
        return f"{self.name}-{n:06d}.vmdk"

    def renamed(self, new: str) -> tuple[Vmx, dict[str, str]]:
        """The clone's configuration and the file-name map old -> new (clone `new`)."""
        mapping = {f: new + f[len(self.name):] for f in self.files()}
        out = replace(self, name=new, disk=mapping.get(self.disk, ""),
                      parents={mapping[k]: mapping[v] for k, v in self.parents.items()},
                      snapshots=[replace(s, disk=mapping[s.disk]) for s in self.snapshots])
        return out, mapping

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=1, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> Vmx:
        try:
            data: dict[str, Any] = json.loads(text)
            snaps = [Snapshot(**s) for s in data.pop("snapshots", [])]
            return cls(**data, snapshots=snaps)
        except (ValueError, TypeError) as err:
            raise InvalidArgument(f"Not a VM configuration: {err}") from None


def base_disk(name: str) -> str:
    return f"{name}.vmdk"
