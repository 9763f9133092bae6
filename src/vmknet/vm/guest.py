"""A running guest: its memory, its workload, its disk and its device state, in one VM process."""

from __future__ import annotations

import json
import os
import struct
from dataclasses import dataclass, field
from typing import Any

from .disk import DiskSpec
from .diskio import DiskIo, context
from .memory import GuestMemory, Workload

DEVICE_BYTES = 4096  # vCPU registers and virtual devices: small next to memory, sent at stun


@dataclass
class Guest:
    name: str
    lab: str
    host: str
    seed: int
    memory: GuestMemory
    workload: Workload
    device: bytes = field(default_factory=lambda: os.urandom(DEVICE_BYTES))
    disk: DiskIo | None = None  # the virtual disk and its I/O stream, when the VM has one

    def device_state(self) -> bytes:
        """The device blob plus the workload's progress, so the guest resumes where it was.

        With a disk: no I/O in flight and the disk flushed first (at a switchover the guest
        is stunned, so none follows), and the disk's spec and stream position go along:
        the receiving process opens the same disk (shared storage) and goes on."""
        meta: dict[str, Any] = {"writes": self.workload.writes}
        if self.disk is not None:
            self.disk.quiesce()
            meta["disk"] = self.disk.state()
        blob = json.dumps(meta).encode()
        return struct.pack("!I", len(blob)) + blob + self.device

    def restore_device(self, blob: bytes) -> None:
        (n,) = struct.unpack_from("!I", blob)
        meta = json.loads(blob[4:4 + n])
        self.workload.writes = int(meta["writes"])
        self.device = blob[4 + n:]
        disk = meta.get("disk")
        if isinstance(disk, dict):
            self._restore_disk(disk)

    def _restore_disk(self, state: dict[str, Any]) -> None:
        if self.disk is not None:  # FT checkpoints restore again and again: one disk
            self.disk.seq = int(state["seq"])
            self.disk.restore_counters(state.get("counters"))
            return
        # The disk is opened by the stream's thread, not here: a switchover's downtime
        # does not wait for logins into the LUN's paths (the guest's first I/O does).
        self.disk = DiskIo(DiskSpec.from_dict(state["spec"]), context(self.lab, self.host),
                           self.workload, float(state["rate"]), int(state["seed"]),
                           int(state["seq"]))
        self.disk.restore_counters(state.get("counters"))
        self.disk.start()
