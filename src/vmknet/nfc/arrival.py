"""Arrival digests: the server hashes WRITE_RANGE data per block as it lands.

One `Tracked` per open inode (shared by every session and handle that has the
file open, so striped copies over several connections share it). A block's
state is one of:

* known zero (a fresh file after OPEN create of an empty file, or a whole-block
  hole punched by WRITE_RANGE|ZERO): nothing written yet, the block reads as zeros;
* hashing: a BlockHash (CRC-32) over [start, pos) of exactly the bytes pwrite() put there,
  with [pos, end) still known zero (writes came in order, gaps are holes);
* a digest read back by CHECKSUM, valid until the block is written again;
* unknown (None): anything else (out-of-order or overlapping writes, a failed
  write, SETSIZE, a resumed file): CHECKSUM reads that block back from disk.

Every disk change through NFC happens under the file's lock together with its
state update, so the state always describes what the session wrote last.
The state lives only while a handle is open (an open fd pins the inode, so
a reused inode number never inherits stale state).
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field

from .files import BLOCK, BlockHash, _zero_digest, block_count, block_digests

_ZEROS = bytes(BLOCK)


@dataclass
class _Blk:
    start: int
    pos: int
    hasher: BlockHash | None  # None: `digest` holds a read-back digest
    digest: bytes = b""


@dataclass
class Tracked:
    size: int
    fresh: bool  # blocks absent from `blocks` are known zero (else unknown)
    block: int = BLOCK
    blocks: dict[int, _Blk | None] = field(default_factory=dict)
    refs: int = 0
    gen: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def _get(self, i: int) -> _Blk | None:
        if i in self.blocks:
            return self.blocks[i]
        if not self.fresh:
            return None
        blk = _Blk(i * self.block, i * self.block, BlockHash())
        self.blocks[i] = blk
        return blk

    def forget_all(self, size: int) -> None:
        """Caller holds the lock: nothing is known any more (size changes, resumes)."""
        self.size, self.fresh, self.blocks = size, False, {}
        self.gen += 1

    def wrote(self, offset: int, data: memoryview) -> None:
        """Caller holds the lock: `data` is now at `offset` (pwrite returned all of it)."""
        self.gen += 1
        end = offset + len(data)
        if end > self.size:  # the file grew: block ends moved
            self.forget_all(end)
            return
        if not data:
            return
        b = self.block
        for i in range(offset // b, (end - 1) // b + 1):
            lo, hi = max(offset, i * b), min(end, (i + 1) * b)
            blk = self._get(i)
            if blk is None or blk.hasher is None or lo < blk.pos:
                self.blocks[i] = None  # out of order / overlap / rewrite of a read-back block
                continue
            gap = lo - blk.pos
            while gap:  # a hole between extents: zeros, as a read would give
                n = min(gap, len(_ZEROS))
                blk.hasher.update(_ZEROS[:n])
                gap -= n
            blk.hasher.update(data[lo - offset:hi - offset])
            blk.pos = hi

    def punched(self, offset: int, length: int) -> None:
        """Caller holds the lock: [offset, offset+length) is now a hole."""
        self.gen += 1
        end = min(offset + length, self.size)
        b = self.block
        for i in range(offset // b, block_count(end, b)):
            lo, hi = i * b, min((i + 1) * b, self.size)
            if offset <= lo and end >= hi:
                self.blocks[i] = _Blk(lo, lo, BlockHash())
            else:
                self.blocks[i] = None

    def digests(self, fd: int, block: int) -> tuple[list[bytes], int]:
        """Every block's digest: from arrival state, reading back only unknown blocks.

        Returns (digests, blocks read back). Locks itself.
        """
        with self.lock:
            size = os.fstat(fd).st_size
            if size != self.size:
                self.forget_all(size)
            if block != self.block:
                return block_digests(fd, size, block), block_count(size, block)
            out: list[bytes | None] = []
            for i in range(block_count(size, block)):
                blk = self._get(i)
                out.append(None if blk is None else _finish(blk, min((i + 1) * block, size)))
            gen = self.gen
        missing = [i for i, d in enumerate(out) if d is None]
        read: dict[int, bytes] = {}
        for i in missing:
            start, end = i * block, min((i + 1) * block, size)
            read[i] = _read_digest(fd, start, end)
        if read:
            with self.lock:
                if self.gen == gen:  # nothing changed while we read: remember them
                    for i, d in read.items():
                        self.blocks[i] = _Blk(i * block, i * block, None, d)
        return [d if d is not None else read[i] for i, d in enumerate(out)], len(missing)


def _finish(blk: _Blk, end: int) -> bytes:
    if blk.hasher is None:
        return blk.digest
    if blk.pos == blk.start:
        return _zero_digest(end - blk.start)
    h = blk.hasher.copy()
    gap = end - blk.pos
    while gap > 0:
        n = min(gap, len(_ZEROS))
        h.update(_ZEROS[:n])
        gap -= n
    return h.digest()


def _read_digest(fd: int, start: int, end: int) -> bytes:
    h = BlockHash()
    pos = start
    while pos < end:
        chunk = os.pread(fd, min(end - pos, 1 << 20), pos)
        if not chunk:
            chunk = bytes(end - pos)
        h.update(chunk)
        pos += len(chunk)
    return h.digest()


_ALL: dict[tuple[int, int], Tracked] = {}
_ALL_LOCK = threading.Lock()


def acquire(fd: int, fresh: bool) -> Tracked:
    """The inode's state (new: `fresh` says whether it is all hole); one reference more."""
    st = os.fstat(fd)
    key = (st.st_dev, st.st_ino)
    with _ALL_LOCK:
        t = _ALL.get(key)
        if t is None:
            t = _ALL[key] = Tracked(st.st_size, fresh)
        t.refs += 1
    with t.lock:
        if st.st_size != t.size:
            t.forget_all(st.st_size)
    return t


def release(fd: int, t: Tracked) -> None:
    """One reference less (before os.close(fd)); the state goes with the last one."""
    try:
        st = os.fstat(fd)
    except OSError:
        return
    key = (st.st_dev, st.st_ino)
    with _ALL_LOCK:
        t.refs -= 1
        if t.refs <= 0 and _ALL.get(key) is t:
            del _ALL[key]
