"""The guest's disk I/O: a steady stream of small writes, each read back and verified.

    io = DiskIo(spec, ctx, workload, rate=20, seed=1)   # rate: writes per second
    io.open(); io.start()
    io.stats()          # reads, writes, bytes, I/O errors, verify failures
    io.quiesce()        # no I/O in flight, disk flushed (a vMotion's switchover)

Write number n goes to slot (n * STRIDE) mod slots of BLOCK bytes with content that
only (seed, n) gives, and is read back at once: a wrong byte is a verify failure,
an exception an I/O error; both are counted, neither stops the guest (a real guest
sees an I/O error and goes on). The stream runs only while the memory workload runs,
so a stunned guest issues no I/O. Its position (`seq`) travels in the device state:
the copy on a vMotion's target first reads back the source's last write (the same
bytes through its own host's paths: shared storage), then goes on from there.
"""

from __future__ import annotations

import hashlib
import threading
import time
from pathlib import Path
from typing import Any

from ..errors import VmknetError
from ..model import Datacenter
from .disk import BlockBackend, DiskContext, DiskSpec, open_disk
from .memory import Workload

BLOCK = 4096
STRIDE = 257  # slots visited in a scattered order (odd: every slot of a 2^k disk in turn)
OPEN_RETRY = 1.0  # s between attempts to open a disk that is not there yet
DEFAULT_RATE = 20.0  # writes (each read back) per second


def lab_datacenter(lab: str) -> Datacenter:
    """The inventory of the lab's bound store (what a VM process opens a shared disk with)."""
    from ..inventory import Inventory
    from ..lab.registry import store_of

    store = store_of(lab)
    if store is None:
        raise VmknetError(f"Lab {lab} has no bound store: its disks cannot be opened",
                          code="NotFound")
    return Inventory.open(store if isinstance(store, str) else Path(store)).read()


def context(lab: str, host: str) -> DiskContext:
    return DiskContext(lab, host, lambda: lab_datacenter(lab))


def pattern(seed: int, seq: int) -> bytes:
    """The content of write `seq`: only (seed, seq) gives it."""
    return hashlib.shake_256(f"vmknet-disk:{seed}:{seq}".encode()).digest(BLOCK)


def slot_offset(seq: int, size: int) -> int:
    slots = max(1, size // BLOCK)
    return (seq * STRIDE) % slots * BLOCK


class DiskIo:
    def __init__(self, spec: DiskSpec, ctx: DiskContext, workload: Workload,
                 rate: float = DEFAULT_RATE, seed: int = 1, seq: int = 0) -> None:
        self.spec, self.ctx, self.workload = spec, ctx, workload
        self.rate, self.seed, self.seq = rate, seed, seq
        self.disk: BlockBackend | None = None
        self.reads = self.writes = self.bytes_read = self.bytes_written = 0
        self.errors = 0  # I/O errors (an exception from the backend)
        self.verify_failures = 0  # read back, not what was written
        self.carried: bool | None = None  # the previous process's last write read back here
        self.last_error = ""
        self._checked = False  # the previous process's last write read back (once)
        self.max_io_s = 0.0
        self.lock = threading.Lock()  # one I/O at a time; quiesce waits for it
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="vmx-disk", daemon=True)

    # ------------------------------------------------------------ lifecycle

    def open(self) -> None:
        """Open the backend now (boot: a disk that cannot be opened fails the boot)."""
        if self.disk is None:
            self.disk = open_disk(self.spec, self.ctx)

    def start(self) -> None:
        self._thread.start()

    def quiesce(self) -> None:
        """No I/O in flight and the disk durable (the guest is stunned: none follows)."""
        with self.lock:
            if self.disk is not None:
                self.disk.flush()

    def close(self) -> None:
        self._stop.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(5.0)
        with self.lock:
            disk, self.disk = self.disk, None
        if disk is not None:
            try:
                disk.flush()
            finally:
                disk.close()

    # ------------------------------------------------------------------ I/O

    def _run(self) -> None:
        while self.disk is None and not self._stop.is_set():
            try:
                self.open()
            except (VmknetError, OSError) as err:
                self._error(f"open: {err}")
                self._stop.wait(OPEN_RETRY)
        period = 1.0 / self.rate if self.rate > 0 else None
        next_at = time.monotonic()
        while not self._stop.is_set() and period is not None:
            if not self.workload.active:
                self._stop.wait(0.02)  # stunned (or stopped for good): no I/O
                next_at = time.monotonic()
                continue
            self._stop.wait(max(0.0, next_at - time.monotonic()))
            next_at = max(next_at + period, time.monotonic() - 1.0)  # no burst after a stall
            with self.lock:
                if self.workload.active and not self._stop.is_set():
                    self._step()

    def _step(self) -> None:
        disk = self.disk
        if disk is None:
            return
        if not self._checked:
            self._checked = True
            if self.seq > 0:
                self.carried = self._verify(disk, self.seq - 1)  # the last write before us
        seq = self.seq
        offset = slot_offset(seq, disk.size)
        started = time.monotonic()
        try:
            disk.write(offset, pattern(self.seed, seq))
            self.writes += 1
            self.bytes_written += BLOCK
        except (VmknetError, OSError) as err:
            self._error(f"write #{seq} at {offset}: {err}")
            return
        self.seq = seq + 1
        self._verify(disk, seq)
        # the longest write + read-back: the I/O pause the guest saw (a path failover)
        self.max_io_s = max(self.max_io_s, time.monotonic() - started)

    def _verify(self, disk: BlockBackend, seq: int) -> bool:
        offset = slot_offset(seq, disk.size)
        try:
            got = disk.read(offset, BLOCK)
        except (VmknetError, OSError) as err:
            self._error(f"read #{seq} at {offset}: {err}")
            return False
        self.reads += 1
        self.bytes_read += len(got)
        if got != pattern(self.seed, seq):
            self.verify_failures += 1
            self.last_error = f"read-back of write #{seq} at {offset} differs"
            return False
        return True

    def _error(self, message: str) -> None:
        self.errors += 1
        self.last_error = message[:300]

    # ---------------------------------------------------------------- state

    COUNTERS = ("reads", "writes", "bytes_read", "bytes_written", "errors", "verify_failures")

    def state(self) -> dict[str, Any]:
        """What travels in the device state: the disk, the stream's position, its counters
        (the VM's totals, not one process's)."""
        return {"spec": self.spec.to_dict(), "seq": self.seq, "rate": self.rate,
                "seed": self.seed, "counters": {k: getattr(self, k) for k in self.COUNTERS}}

    def restore_counters(self, counters: Any) -> None:
        if isinstance(counters, dict):
            for key in self.COUNTERS:
                if isinstance(counters.get(key), int):
                    setattr(self, key, counters[key])

    def stats(self) -> dict[str, Any]:
        return {"disk": self.spec.text(), "datastore": self.spec.datastore,
                "kind": self.spec.kind, "size": self.spec.size, "open": self.disk is not None,
                "writes": self.writes, "reads": self.reads,
                "bytes_written": self.bytes_written, "bytes_read": self.bytes_read,
                "io_errors": self.errors, "verify_failures": self.verify_failures,
                "carried_verified": self.carried, "seq": self.seq,
                "max_io_ms": round(self.max_io_s * 1000, 1),
                "last_error": self.last_error}
