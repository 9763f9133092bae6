"""What a caller of the NFS client sees, whatever the NFS version: a mount and its files.

    m = mount("198.18.31.100", "/share", version=3, bind=Bind(ns, "vmk4", "198.18.31.11"))
    with m.open_file("vm1/disk.img", create=True, size=64 << 20) as f:
        f.write(0, b"x" * 4096)
        f.flush()                     # durable on the server (COMMIT)
        assert f.read(0, 4096) == b"x" * 4096
    m.write_file("heartbeat/esx01", b"1732960000")
    m.close()

Paths are relative to the export's root and never leave it (paths.py).
"""

from __future__ import annotations

import abc
from collections.abc import Iterable, Sequence, Sized
from dataclasses import dataclass
from types import TracebackType

from .errors import NfsError, NfsProtocolError

MAX_READ_FILE = 64 << 20  # read_file() is for small files: a larger one is refused


@dataclass(frozen=True, slots=True)
class StatFs:
    """The export's file system, in bytes and inodes (NFS 3 FSSTAT, NFS 4 space_*)."""

    total: int
    free: int
    avail: int
    files: int
    files_free: int


def taken(path: str, parts: Sequence[tuple[int, Sized]],
          replies: Iterable[tuple[int, bytes]]) -> tuple[int, bytes]:
    """WRITE replies (count, verifier) to the pieces of one write, both versions: how many
    bytes the server took from the front (a short write ends the count; the caller sends
    the rest again from there) and the last verifier. A count larger than its piece is a
    broken reply; nothing taken at all, an error rather than a loop."""
    done, verifier = 0, b""
    for (_, chunk), (count, verf) in zip(parts, replies, strict=True):
        if count > len(chunk):
            raise NfsProtocolError(f"WRITE {path}: {count} bytes of {len(chunk)}")
        verifier = verf
        done += count
        if count < len(chunk):
            break
    if done == 0:
        raise NfsError(f"WRITE {path}: the server wrote nothing")
    return done, verifier


class NfsFile(abc.ABC):
    """An open file: read and write at offsets; `flush` makes the writes durable."""

    @property
    @abc.abstractmethod
    def size(self) -> int:
        """The file's size as this client knows it (its own writes included)."""

    @abc.abstractmethod
    def read(self, offset: int, length: int) -> bytes:
        """Up to `length` bytes at `offset`; fewer only at the end of the file."""

    @abc.abstractmethod
    def write(self, offset: int, data: bytes) -> None:
        """Write `data` at `offset` (durable after flush, or at once on a sync mount)."""

    @abc.abstractmethod
    def flush(self) -> None:
        """Make every write so far durable on the server (COMMIT)."""

    @abc.abstractmethod
    def close(self) -> None:
        """Flush, then release the file."""

    def __enter__(self) -> NfsFile:
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


class NfsMount(abc.ABC):
    """One mounted export of one server (or, NFS 4.1, one session over several addresses)."""

    server: str
    export: str
    version: str

    @abc.abstractmethod
    def open_file(self, path: str, create: bool = False, size: int | None = None) -> NfsFile:
        """Open `path`; `create` makes it if missing; `size` sets its length (sparse)."""

    @abc.abstractmethod
    def listdir(self, path: str = "/") -> list[str]:
        """The names in directory `path`, sorted, without "." and ".."."""

    @abc.abstractmethod
    def mkdir(self, path: str, exist_ok: bool = False) -> None: ...

    @abc.abstractmethod
    def remove(self, path: str) -> None:
        """Remove a file or an empty directory."""

    @abc.abstractmethod
    def exists(self, path: str) -> bool: ...

    @abc.abstractmethod
    def write_file(self, path: str, data: bytes) -> None:
        """Create or replace a small file's content, durably (FILE_SYNC)."""

    @abc.abstractmethod
    def read_file(self, path: str, limit: int = MAX_READ_FILE) -> bytes:
        """A small file's whole content; a file larger than `limit` is refused."""

    @abc.abstractmethod
    def statfs(self) -> StatFs: ...

    @abc.abstractmethod
    def ping(self) -> float:
        """Seconds for one round trip that does nothing (NFS 3 NULL, NFS 4.1 SEQUENCE alone):
        a liveness check, e.g. of a datastore heartbeat."""

    @abc.abstractmethod
    def close(self) -> None: ...

    def __enter__(self) -> NfsMount:
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()
