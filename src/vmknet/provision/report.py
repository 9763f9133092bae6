"""What a provisioning operation did: the files it copied (each an nfc.CopyReport), the
adapter pairs both ends used and why (PATH-2), totals, and the vMotion part if any."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..nfc import CopyReport


@dataclass
class MoveReport:
    operation: str  # migrate | clone | vmotion | register (a registration following a vMotion)
    vm: str
    target_vm: str
    source: str  # host:[datastore]
    target: str
    completed: bool = False
    reason: str = ""
    seconds: float = 0.0
    copy_seconds: float = 0.0
    files: list[CopyReport] = field(default_factory=list)
    vmotion: dict[str, Any] | None = None  # MigrationReport.to_dict() of a live migration
    shared_disks: list[str] = field(default_factory=list)  # disks left on shared storage

    @property
    def disk_bytes(self) -> int:
        """Data bytes of disk files copied (0 when every disk is on a shared datastore)."""
        return sum(f.data_bytes for f in self.files if f.target.endswith(".vmdk"))

    @property
    def logical_size(self) -> int:
        return sum(f.logical_size for f in self.files)

    @property
    def data_bytes(self) -> int:
        return sum(f.data_bytes for f in self.files)

    @property
    def bytes_on_wire(self) -> int:
        return sum(f.bytes_on_wire for f in self.files)

    def adapters(self) -> list[dict[str, Any]]:
        """Each adapter pair once (every file of a VM uses the same pairs), bytes summed."""
        out: dict[tuple[str, str, str], dict[str, Any]] = {}
        for report in self.files:
            for flow in report.flows:
                key = (flow.source_vmk, flow.target_vmk, flow.reason)
                row = out.setdefault(key, {
                    "source_vmk": flow.source_vmk, "source_stack": flow.source_stack,
                    "source_address": flow.source_address, "target_vmk": flow.target_vmk,
                    "target_stack": flow.target_stack, "target_address": flow.target_address,
                    "reason": flow.reason, "bytes_on_wire": 0})
                row["bytes_on_wire"] += flow.bytes_on_wire
        return list(out.values())

    def to_dict(self) -> dict[str, Any]:
        return {"operation": self.operation, "vm": self.vm, "target_vm": self.target_vm,
                "source": self.source, "target": self.target, "completed": self.completed,
                "reason": self.reason, "seconds": self.seconds,
                "copy_seconds": self.copy_seconds, "logical_size": self.logical_size,
                "data_bytes": self.data_bytes, "bytes_on_wire": self.bytes_on_wire,
                "adapters": self.adapters(), "files": [f.to_dict() for f in self.files],
                "vmotion": self.vmotion, "disk_bytes": self.disk_bytes,
                "shared_disks": self.shared_disks}

    def summary(self) -> str:
        pairs = "; ".join(f"{a['source_vmk']}({a['source_stack']}) -> {a['target_vmk']}"
                          f"({a['target_stack']}): {a['reason']}" for a in self.adapters())
        return (f"{self.operation} {self.vm} {self.source} -> {self.target_vm} {self.target}: "
                f"{'completed' if self.completed else 'failed'} ({self.reason}); "
                f"{len(self.files)} files, {self.logical_size} B logical, {self.data_bytes} B "
                f"data, {self.bytes_on_wire} B on the wire in {self.copy_seconds:.2f} s; {pairs}")
