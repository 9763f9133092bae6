"""A member's local capacity: its components' files, and the dirty bitmaps of missed writes.

A replica is a sparse file of the object's size; a witness component is a small
file that only says it exists (its vote). While another replica of the object is
absent, every write this replica takes also marks its blocks in a bitmap kept for
the absent one (one byte per BLOCK, on disk, synced with the data): when the
absent replica returns, exactly those blocks are copied to it (VSAN-2), and a
crash of this node loses none of them.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Sequence
from pathlib import Path

from ..errors import InvalidArgument, NotFound
from . import paths

BLOCK = 64 << 10  # the resync grain


class Bitmap:
    """One byte per block of a component: 1 = the absent replica missed a write there."""

    def __init__(self, path: Path, size: int) -> None:
        self.path = path
        self.blocks = -(-size // BLOCK)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        os.ftruncate(fd, self.blocks)
        self.fd = fd
        self.bits = bytearray(os.pread(fd, self.blocks, 0).ljust(self.blocks, b"\0"))

    def mark(self, offset: int, length: int, sync: bool = True) -> None:
        first = offset // BLOCK
        last = min((offset + max(length, 1) - 1) // BLOCK, self.blocks - 1)
        if first > last:
            return
        self.bits[first:last + 1] = b"\1" * (last - first + 1)
        os.pwrite(self.fd, b"\1" * (last - first + 1), first)
        if sync:
            os.fdatasync(self.fd)

    def mark_all(self, blocks: list[int]) -> None:
        for b in blocks:
            self.bits[b] = 1
        os.pwrite(self.fd, bytes(self.bits), 0)
        os.fdatasync(self.fd)

    def clear(self, first: int, count: int) -> None:
        self.bits[first:first + count] = b"\0" * count
        os.pwrite(self.fd, b"\0" * count, first)

    def runs(self, longest: int) -> list[tuple[int, int]]:
        """[(first block, count)] of dirty blocks, each run at most `longest` blocks."""
        out, b = [], self.bits.find(1)
        while b >= 0:
            end = b
            while end < self.blocks and self.bits[end] and end - b < longest:
                end += 1
            out.append((b, end - b))
            b = self.bits.find(1, end)
        return out

    def count(self) -> int:
        return self.bits.count(1)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            os.close(self.fd)


class LocalDisk:
    """The components of one host (paths.disk_dir), with open files and bitmaps cached."""

    def __init__(self, lab: str, host: str) -> None:
        self.lab, self.host = lab, host
        self.dir = paths.disk_dir(lab, host)
        self.dir.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._fds: dict[tuple[str, str], tuple[int, int]] = {}  # -> (fd, size)
        self._maps: dict[tuple[str, str, str], Bitmap] = {}

    def create(self, uuid: str, comp: str, size: int, kind: str) -> None:
        path = paths.component_path(self.lab, self.host, uuid, comp)
        if kind == "witness":
            path.with_name(path.name + ".witness").write_text(str(size), "utf-8")
            return
        if not 0 < size <= 1 << 40:
            raise InvalidArgument(f"component size {size} outside 1..1 TiB")
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            os.ftruncate(fd, size)
        finally:
            os.close(fd)

    def has_witness(self, uuid: str, comp: str) -> bool:
        path = paths.component_path(self.lab, self.host, uuid, comp)
        return path.with_name(path.name + ".witness").exists()

    def _open(self, uuid: str, comp: str) -> tuple[int, int]:
        with self._lock:
            got = self._fds.get((uuid, comp))
            if got is None:
                path = paths.component_path(self.lab, self.host, uuid, comp)
                try:
                    fd = os.open(path, os.O_RDWR)
                except FileNotFoundError:
                    raise NotFound(f"{self.host} holds no component {uuid}.{comp}") from None
                got = (fd, os.fstat(fd).st_size)
                self._fds[(uuid, comp)] = got
            return got

    def _bounds(self, size: int, offset: int, length: int) -> None:
        if offset < 0 or length < 0 or offset + length > size:
            raise InvalidArgument(f"I/O at {offset}+{length} outside the object (size {size})")

    def bitmap(self, uuid: str, comp: str, other: str) -> Bitmap:
        with self._lock:
            got = self._maps.get((uuid, comp, other))
            if got is None:
                path = paths.component_path(self.lab, self.host, uuid, comp)
                size = os.stat(path).st_size
                got = Bitmap(path.with_name(f"{path.name}.dirty.{paths.check_comp(other)}"), size)
                self._maps[(uuid, comp, other)] = got
            return got

    def write(self, uuid: str, comp: str, offset: int, data: bytes | bytearray,
              track: Sequence[str] = ()) -> None:
        fd, size = self._open(uuid, comp)
        self._bounds(size, offset, len(data))
        os.pwrite(fd, data, offset)
        maps = [self.bitmap(uuid, comp, other) for other in track]
        for m in maps:
            m.mark(offset, len(data), sync=False)
        os.fdatasync(fd)  # durable before the ack (VSAN-2)
        for m in maps:
            os.fdatasync(m.fd)

    def read(self, uuid: str, comp: str, offset: int, length: int) -> bytes:
        fd, size = self._open(uuid, comp)
        self._bounds(size, offset, length)
        return os.pread(fd, length, offset)

    def size(self, uuid: str, comp: str) -> int:
        return self._open(uuid, comp)[1]

    def data_blocks(self, uuid: str, comp: str) -> list[int]:
        """Blocks that hold data (a rebuild copies only those of a sparse replica)."""
        fd, size = self._open(uuid, comp)
        out: set[int] = set()
        at = 0
        while at < size:
            try:
                start = os.lseek(fd, at, os.SEEK_DATA)
            except OSError:
                break
            end = min(os.lseek(fd, start, os.SEEK_HOLE), size)
            out.update(range(start // BLOCK, -(-end // BLOCK)))
            at = end
        return sorted(out)

    def bitmaps(self) -> list[tuple[str, str, str]]:
        """(uuid, comp, other) of every bitmap on this host."""
        out = []
        for p in sorted(self.dir.glob("*.dirty.*")):
            uuid, comp, _, other = p.name.split(".", 3)
            out.append((uuid, comp, other))
        return out

    def drop_bitmap(self, uuid: str, comp: str, other: str) -> None:
        with self._lock:
            m = self._maps.pop((uuid, comp, other), None)
        if m is not None:
            m.close()
        path = paths.component_path(self.lab, self.host, uuid, comp)
        path.with_name(f"{path.name}.dirty.{other}").unlink(missing_ok=True)

    def components(self) -> list[tuple[str, str]]:
        """(uuid, comp) of every replica and witness file here."""
        out = set()
        for p in self.dir.iterdir():
            parts = p.name.split(".")
            if (len(parts) >= 2 and paths.UUID.fullmatch(parts[0])
                    and paths.COMP.fullmatch(parts[1])):
                out.add((parts[0], parts[1]))
        return sorted(out)

    def age(self, uuid: str, comp: str) -> float:
        """Seconds since the component's newest file changed."""
        path = paths.component_path(self.lab, self.host, uuid, comp)
        times = [p.stat().st_mtime for p in path.parent.glob(f"{path.name}*")]
        return time.time() - max(times, default=0.0)

    def delete(self, uuid: str, comp: str) -> None:
        with self._lock:
            got = self._fds.pop((uuid, comp), None)
            maps = [k for k in self._maps if k[:2] == (uuid, comp)]
            for k in maps:
                self._maps.pop(k).close()
        if got is not None:
            os.close(got[0])
        path = paths.component_path(self.lab, self.host, uuid, comp)
        for p in path.parent.glob(f"{path.name}*"):
            p.unlink(missing_ok=True)

    def close(self) -> None:
        with self._lock:
            for fd, _ in self._fds.values():
                with contextlib.suppress(OSError):
                    os.close(fd)
            for m in self._maps.values():
                m.close()
            self._fds.clear()
            self._maps.clear()
