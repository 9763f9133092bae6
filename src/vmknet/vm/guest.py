"""A running guest: its memory, its workload and its device state, in one VM process."""

from __future__ import annotations

import json
import os
import struct
from dataclasses import dataclass, field

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

    def device_state(self) -> bytes:
        """The device blob plus the workload's progress, so the guest resumes where it was."""
        meta = json.dumps({"writes": self.workload.writes}).encode()
        return struct.pack("!I", len(meta)) + meta + self.device

    def restore_device(self, blob: bytes) -> None:
        (n,) = struct.unpack_from("!I", blob)
        meta = json.loads(blob[4:4 + n])
        self.workload.writes = int(meta["writes"])
        self.device = blob[4 + n:]
