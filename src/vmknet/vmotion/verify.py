"""The end-to-end memory check of a migration, kept off the downtime.

The memory digest is sha256 over the sha256s of its blocks (DIGEST_PAGES pages,
one), in block order (`GuestMemory.digest`). Before the guest resumes on the
target, only the receive path writes the target's memory, so the target keeps
each block's digest up to date as pages land (`BlockDigests`: marked by the
receive path, hashed by a thread of its own) and has the digest of its memory at
switchover for the cost of the last round's pages and one hash over the block
digests. Zero runs take the precomputed digest of zeros.

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

import os
import threading

import numpy as np
import numpy.typing as npt

from ..vm.memory import DIGEST_PAGES, GuestMemory, combine, zero_digest

FLIP_ENV = "VMKNET_VMOTION_FLIP_PAGE"
FLIP_OFFSET = 100  # byte of the page that the test hook flips
BATCH = 1024  # blocks hashed between two takes of the receive lock


def flip_page() -> int | None:
    value = os.environ.get(FLIP_ENV, "")
    return int(value) if value.isdigit() else None


class BlockDigests:
    """The target's per-block digests, exact for the memory the receive path wrote.

    The receive path only marks the blocks a frame touched (`update`, under its lock);
    a hasher thread rehashes marked blocks meanwhile, off the receive path. A block
    written while it was being hashed keeps its mark (its write count moved on) and is
    hashed again. `digest()` hashes what is still marked and combines.
    """

    def __init__(self, memory: GuestMemory, lock: threading.Lock) -> None:
        self.memory = memory
        self.lock = lock  # the receive path's: held by it around every write
        n = memory.n_blocks
        tail = memory.n_pages - (n - 1) * DIGEST_PAGES
        self.digests = [zero_digest(DIGEST_PAGES)] * (n - 1) + [zero_digest(tail)]
        self.stale: npt.NDArray[np.bool_] = np.zeros(n, dtype=np.bool_)
        self.writes: npt.NDArray[np.uint64] = np.zeros(n, dtype=np.uint64)
        self.flip = flip_page()
        self.work = threading.Event()
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._hasher, name="vmotion-digest", daemon=True)
        self.thread.start()

    def update(self, start: int, count: int, zero: bool,
               fresh: npt.NDArray[np.bool_] | None = None) -> None:
        """Pages [start, start+count) were just written (`fresh`: which of them, all when
        None), the caller holding the lock: mark the blocks they touch. `zero`: they were
        zero-filled, so a block wholly inside the run, every page of it written, is known
        at once (the digest of zeros)."""
        end = start + count
        if self.flip is not None and start <= self.flip < end and (
                fresh is None or fresh[self.flip - start]):
            self.memory.pages[self.flip, FLIP_OFFSET] ^= 0xFF
        n_pages = self.memory.n_pages
        first, last = start // DIGEST_PAGES, -(-end // DIGEST_PAGES)
        self.writes[first:last] += 1
        for block in range(first, last):
            a = block * DIGEST_PAGES
            b = min(a + DIGEST_PAGES, n_pages)
            if zero and fresh is None and start <= a and b <= end and block != self.flip_block:
                self.digests[block] = zero_digest(b - a)
                self.stale[block] = False
            else:
                self.stale[block] = True
        self.work.set()

    @property
    def flip_block(self) -> int:
        return -1 if self.flip is None else self.flip // DIGEST_PAGES

    def rehash(self) -> int:
        """Hash the marked blocks, a batch at a time outside the lock; a block written while
        it was hashed stays marked. The number of blocks hashed."""
        with self.lock:
            todo = np.flatnonzero(self.stale)
            seen = self.writes[todo].copy()
            self.stale[todo] = False
        for at in range(0, len(todo), BATCH):
            part = todo[at:at + BATCH]
            digests = [self.memory.block_digest(b) for b in part.tolist()]
            with self.lock:
                moved = self.writes[part] != seen[at:at + BATCH]
                for block, digest, again in zip(part.tolist(), digests, moved.tolist(),
                                                strict=True):
                    if again:
                        self.stale[block] = True  # written meanwhile: hashed next pass
                    else:
                        self.digests[block] = digest
        return len(todo)

    def settle(self) -> int:
        """Hash until nothing is marked (the receive path being quiet): blocks hashed."""
        total = 0
        while n := self.rehash():
            total += n
        return total

    def _hasher(self) -> None:
        while not self.done.is_set():
            if self.work.wait(0.5):
                self.work.clear()
                self.rehash()

    def digest(self) -> str:
        """The digest of the target's memory now (the receive path is done)."""
        self.done.set()
        self.work.set()
        self.thread.join()
        self.settle()
        with self.lock:
            return combine(self.digests)
