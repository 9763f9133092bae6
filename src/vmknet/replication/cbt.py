"""Changed-block tracking on the source: the disk writer (the guest's disk I/O) and its bitmap.

The writer thread writes BLOCK-sized pieces at random block offsets of the VM's
disk at a fixed byte rate and marks each written block dirty. A sync takes a
consistent point in time by holding the writer's lock while it reads the dirty
blocks and clears the set: the guest pauses for one read of the changed set
(tens of ms for a few MiB), so every block of one sync is from the same instant.
The pending set is persisted (pending_path) so a restarted agent or a sync that
failed never loses a changed block: only changed blocks go, never a full resync.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import random
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from ..nfc.files import data_ranges

BLOCK = 64 << 10  # the tracking grain: one bit per 64 KiB, like VMFS sparse grains
TICK = 0.01  # s: the writer's pacing step (20 MB/s = 3 blocks per tick)


@dataclass(frozen=True)
class PointInTime:
    """The changed blocks of one sync, read while the writer was paused."""

    generation: int
    taken: float  # time.time() of the consistent point
    blocks: list[int]
    data: bytes  # the blocks' contents, in `blocks` order
    digest: str | None  # blake2b of the whole disk at that point (verify=True)


def disk_digest(path: Path) -> str:
    h = hashlib.blake2b()
    with open(path, "rb") as f:
        while chunk := f.read(4 << 20):
            h.update(chunk)
    return h.hexdigest()


class Tracker:
    """The dirty-block set of one disk, and the writer that fills it."""

    def __init__(self, disk: Path, pending_path: Path, write_rate: int = 0,
                 seed: int = 1) -> None:
        self.disk, self.pending_path = disk, pending_path
        self.size = os.stat(disk).st_size
        self.blocks = self.size // BLOCK
        self.write_rate = write_rate
        self.lock = threading.Lock()
        self.dirty: set[int] = set()
        self.written = 0  # bytes the writer wrote
        self._rng = random.Random(seed)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------ pending CBT
    def load_or_full(self, have_replica: bool) -> None:
        """Pending blocks from disk; with no replica yet every data block is pending."""
        with contextlib.suppress(OSError, ValueError):
            self.dirty |= set(json.loads(self.pending_path.read_text("utf-8"))["dirty"])
        if not have_replica:
            fd = os.open(self.disk, os.O_RDONLY)
            try:
                for start, length in data_ranges(fd, self.size):
                    self.dirty |= set(range(start // BLOCK, -(-(start + length) // BLOCK)))
            finally:
                os.close(fd)

    def save(self) -> None:
        with self.lock:
            dirty = sorted(self.dirty)
        self.pending_path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.pending_path.with_name(f".{self.pending_path.name}.tmp")
        tmp.write_text(json.dumps({"dirty": dirty}), encoding="utf-8")
        tmp.replace(self.pending_path)  # atomic: a crash leaves the old set or the new

    # ------------------------------------------------------------ consistent point
    def take(self, generation: int, verify: bool = False) -> PointInTime:
        with self.paused():
            blocks = sorted(self.dirty)
            fd = os.open(self.disk, os.O_RDONLY)
            try:
                data = b"".join(os.pread(fd, BLOCK, b * BLOCK) for b in blocks)
            finally:
                os.close(fd)
            digest = disk_digest(self.disk) if verify else None
            self.dirty.clear()
            return PointInTime(generation, time.time(), blocks, data, digest)

    def give_back(self, pit: PointInTime) -> None:
        """A sync that failed: its blocks are changed again (their content is re-read later)."""
        with self.lock:
            self.dirty |= set(pit.blocks)

    @contextlib.contextmanager
    def paused(self) -> Iterator[None]:
        with self.lock:
            yield

    # ------------------------------------------------------------ the writer
    def start(self) -> Tracker:
        if self.write_rate > 0:
            self._thread = threading.Thread(target=self._write, daemon=True,
                                            name=f"cbt-writer-{self.disk.name}")
            self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5.0)

    def _write(self) -> None:
        fd = os.open(self.disk, os.O_WRONLY)
        start, owed = time.monotonic(), 0.0
        try:
            while not self._stop.wait(TICK):
                # Paced by elapsed time, so a pause (a sync's consistent point) is caught up.
                owed = (time.monotonic() - start) * self.write_rate - self.written
                while owed >= BLOCK and not self._stop.is_set():
                    block = self._rng.randrange(self.blocks)
                    payload = self._rng.randbytes(BLOCK)
                    with self.lock:
                        os.pwrite(fd, payload, block * BLOCK)
                        self.dirty.add(block)
                    self.written += BLOCK
                    owed -= BLOCK
        finally:
            os.close(fd)
