"""The end-to-end memory check of a migration, kept off the downtime.

The memory digest is sha256 over the sha256s of 64 KiB blocks, in block order
(`GuestMemory.digest`). Before the guest resumes on the target, only the receive
path writes the target's memory, so the target keeps each block's digest up to
date as pages land (`BlockDigests.update`, under the receive lock) and has the
digest of its memory at switchover for the cost of hashing a few hundred bytes
of block digests. Zero runs take the precomputed digest of zeros.

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

import numpy as np
import numpy.typing as npt

from ..vm.memory import DIGEST_PAGES, GuestMemory, combine, zero_digest

FLIP_ENV = "VMKNET_VMOTION_FLIP_PAGE"
FLIP_OFFSET = 100  # byte of the page that the test hook flips


def flip_page() -> int | None:
    value = os.environ.get(FLIP_ENV, "")
    return int(value) if value.isdigit() else None


class BlockDigests:
    """The target's per-block digests, exact for the memory the receive path wrote."""

    def __init__(self, memory: GuestMemory) -> None:
        self.memory = memory
        n = memory.n_blocks
        tail = memory.n_pages - (n - 1) * DIGEST_PAGES
        self.digests = [zero_digest(DIGEST_PAGES)] * (n - 1) + [zero_digest(tail)]
        self.flip = flip_page()

    def update(self, start: int, count: int, zero: bool,
               fresh: npt.NDArray[np.bool_] | None = None) -> None:
        """Pages [start, start+count) were just written (`fresh`: which of them, all when
        None); rehash the blocks they touch. `zero`: they were zero-filled, so a block
        wholly inside the run, every page of it written, is known without reading it."""
        whole = fresh is None
        end = start + count
        if self.flip is not None and start <= self.flip < end and (
                fresh is None or fresh[self.flip - start]):
            self.memory.pages[self.flip, FLIP_OFFSET] ^= 0xFF
        n_pages = self.memory.n_pages
        for block in range(start // DIGEST_PAGES, -(-end // DIGEST_PAGES)):
            a = block * DIGEST_PAGES
            b = min(a + DIGEST_PAGES, n_pages)
            inside = start <= a and b <= end
            if zero and whole and inside and block != self.flip_block:
                self.digests[block] = zero_digest(b - a)
            else:
                self.digests[block] = self.memory.block_digest(block)

    @property
    def flip_block(self) -> int:
        return -1 if self.flip is None else self.flip // DIGEST_PAGES

    def digest(self) -> str:
        """The digest of the target's memory now (the receive path is done)."""
        return combine(self.digests)
