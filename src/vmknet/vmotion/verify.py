"""The end-to-end memory check of a migration, kept off the downtime.

The memory digest is sha256 over the CRC-32s of its blocks (DIGEST_PAGES pages,
one), in block order (`GuestMemory.digest`). Before the guest resumes on the
target, only the receive path writes the target's memory, so the target keeps
each block's digest up to date as pages land (`BlockDigests`: marked by the
receive path, one numpy slice per frame, hashed by a thread of its own) and has
the digest of its memory at switchover for the cost of the last round's pages
and one hash over the block digests. Zero runs take the precomputed digest of zeros.

The source hashes its frozen memory after the target resumed (it is paused and
never runs again unless the migration rolls back); the two digests are compared
before the migration commits (the registry moves, the source exits). A mismatch
stops the target and resumes the source: a "verify after resume" that needs no
post-copy, since the source still holds every page.

Test hook: VMKNET_VMOTION_FLIP_PAGE=<page> in the incoming VM's environment
flips a byte of that page on the target each time the page is written, so a
test can show that a corrupt receive path aborts the migration.
"""

from __future__ import annotations

import hashlib
import os
import threading
import time
import zlib

import numpy as np
import numpy.typing as npt

from ..profiling import profiled
from ..vm.memory import DIGEST_BYTES, DIGEST_PAGES, GuestMemory, zero_digest
from ..vm.units import PAGE_SIZE

FLIP_ENV = "VMKNET_VMOTION_FLIP_PAGE"
FLIP_OFFSET = 100  # byte of the page that the test hook flips
BATCH = 1024  # blocks hashed between two takes of the bookkeeping lock
QUIET = 0.05  # s without a page landing before the hasher thread hashes


def flip_page() -> int | None:
    value = os.environ.get(FLIP_ENV, "")
    return int(value) if value.isdigit() else None


class BlockDigests:
    """The target's per-block digests, exact for the memory the receive path wrote.

    The receive path only marks the blocks a frame touched (`mark`, under its lock:
    a few numpy slice operations per frame, no per-page Python work); a hasher thread
    rehashes marked blocks meanwhile, off the receive path, in batches (hashlib releases
    the GIL while it hashes a page, so the receive threads run meanwhile). A block written
    while it was being hashed keeps its mark (its write count moved on) and is hashed
    again. `digest()` hashes what is still marked and combines. Digests live in one numpy
    array (blocks x DIGEST_BYTES): zero runs set theirs with one slice assignment.
    """

    def __init__(self, memory: GuestMemory, lock: threading.Lock) -> None:
        self.memory = memory
        self.lock = lock  # the receive path's bookkeeping lock
        n = memory.n_blocks
        self.tail = memory.n_pages - (n - 1) * DIGEST_PAGES
        self.zero = np.frombuffer(zero_digest(DIGEST_PAGES), np.uint8)
        self.digests: npt.NDArray[np.uint8] = np.tile(self.zero, (n, 1))
        self.digests[-1] = np.frombuffer(zero_digest(self.tail), np.uint8)
        self.stale: npt.NDArray[np.bool_] = np.zeros(n, dtype=np.bool_)
        self.writes: npt.NDArray[np.uint64] = np.zeros(n, dtype=np.uint64)
        self.flip = flip_page()
        self.last_mark = 0.0  # monotonic time of the receive path's last write
        self.work = threading.Event()
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._hasher, name="vmotion-digest", daemon=True)
        self.thread.start()

    def mark(self, start: int, end: int, zero: bool, whole: bool = True) -> None:
        """Pages [start, end) were just written (`whole`: all of them, else some), the caller
        holding the lock: mark the blocks they touch. `zero` and `whole`: they were zero
        (or already are: fresh memory), so a block wholly inside the run is known at once."""
        if self.flip is not None and start <= self.flip < end:
            self.memory.pages[self.flip, FLIP_OFFSET] ^= 0xFF
        self.last_mark = time.monotonic()
        n = self.memory.n_blocks
        first, last = start // DIGEST_PAGES, -(-end // DIGEST_PAGES)
        self.writes[first:last] += 1
        self.stale[first:last] = True
        if zero and whole:
            a = -(-start // DIGEST_PAGES)
            b = n if end == self.memory.n_pages else end // DIGEST_PAGES
            if a < b:
                self.digests[a:b] = self.zero
                if b == n:
                    self.digests[n - 1] = np.frombuffer(zero_digest(self.tail), np.uint8)
                self.stale[a:b] = False
                if self.flip is not None and a <= self.flip // DIGEST_PAGES < b:
                    self.stale[self.flip // DIGEST_PAGES] = True
        self.work.set()

    def mark_pages(self, start: int, end: int, nonzero: npt.NDArray[np.bool_]) -> None:
        """Pages [start, end) were just written, those where `nonzero` is False with zeros
        (a CHUNK frame; the caller holds the lock): the zero pages' digests are known at
        once, only the data pages wait for the hasher."""
        if DIGEST_PAGES != 1:  # a block spans pages of both kinds: rehash them all
            self.mark(start, end, zero=False)
            return
        if self.flip is not None and start <= self.flip < end:
            self.memory.pages[self.flip, FLIP_OFFSET] ^= 0xFF
        self.last_mark = time.monotonic()
        self.writes[start:end] += 1
        zero = ~nonzero
        if end == self.memory.n_pages and zero[-1]:  # the last block may be short
            zero = zero.copy()
            zero[-1] = False
        self.stale[start:end] = ~zero
        self.digests[start:end][zero] = self.zero
        if self.flip is not None and start <= self.flip < end:
            self.stale[self.flip] = True
        self.work.set()

    def quiet(self) -> bool:
        """No page landed for QUIET s: the receive path is between rounds."""
        return time.monotonic() - self.last_mark >= QUIET

    def rehash(self, polite: bool = False) -> int:
        """Hash the marked blocks, a batch at a time outside the lock; a block written while
        it was hashed stays marked. `polite`: stop (leaving the rest marked) as soon as
        pages land again. The number of blocks hashed."""
        with self.lock:
            todo = np.flatnonzero(self.stale)
            seen = self.writes[todo].copy()
            self.stale[todo] = False
        if not len(todo):
            return 0
        view = memoryview(self.memory.buf)
        step = DIGEST_PAGES * PAGE_SIZE
        crc = zlib.crc32
        for at in range(0, len(todo), BATCH):
            if polite and not self.quiet():
                with self.lock:
                    self.stale[todo[at:]] = True
                return at
            part = todo[at:at + BATCH]
            digests = np.array([crc(view[b * step:(b + 1) * step]) for b in part.tolist()],
                               dtype=">u4").view(np.uint8).reshape(-1, DIGEST_BYTES)
            with self.lock:
                moved = self.writes[part] != seen[at:at + BATCH]
                self.stale[part[moved]] = True  # written meanwhile: hashed next pass
                keep = ~moved
                self.digests[part[keep]] = digests[keep]
        return len(todo)

    def settle(self) -> int:
        """Hash until nothing is marked (the receive path being quiet): blocks hashed."""
        total = 0
        while n := self.rehash():
            total += n
        return total

    def _hasher(self) -> None:
        with profiled("vmotion-hasher"):
            self._hash_quietly()

    def _hash_quietly(self) -> None:
        """Hash while the receive path is quiet (between rounds, waiting for the source):
        on this 2-core host a hasher racing the receive threads for the GIL and the cores
        slowed a migration by a third; what is left is hashed by the probe's `settle`."""
        while not self.done.is_set():
            if not self.work.wait(0.5):
                continue
            if not self.quiet():
                self.done.wait(QUIET)
                continue
            self.work.clear()
            if self.rehash(polite=True) and self.stale.any():
                self.work.set()

    def digest(self) -> str:
        """The digest of the target's memory now (the receive path is done)."""
        self.done.set()
        self.work.set()
        self.thread.join()
        self.settle()
        return self.combined()

    def combined(self) -> str:
        """sha256 over the block digests as they are now."""
        with self.lock:
            return hashlib.sha256(self.digests.tobytes()).hexdigest()
