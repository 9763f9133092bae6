"""NFS 3 mounts: the portmapper, MOUNT 3, then NFS 3 over one bound TCP connection.

As ESXi's NFS 3 client: one connection to one server address, from the
adapter that reaches it. Large reads and writes are split into the server's
preferred sizes (FSINFO) and pipelined, a few calls in flight. Writes are
UNSTABLE and kept until a COMMIT whose verifier matches theirs; a different
verifier means the server restarted and lost them, so they are sent again
(FILE_SYNC) instead of being silently dropped. A sync mount writes FILE_SYNC.

A broken connection fails the call with a clear error; the next call
connects again (file handles of ganesha's FSAL_VFS survive its restart).
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from typing import TypeVar

from . import v3proto as p
from .api import MAX_READ_FILE, NfsFile, NfsMount, StatFs, taken
from .connect import Bind, connect
from .errors import NfsError, NfsNotFound, NfsProtocolError, NfsStatusError
from .paths import components, split
from .rpc import AuthSys, Connection
from .xdr import Packer, Unpacker

T = TypeVar("T")
PMAP_PORT = 111
NFS_PORT = 2049
MAX_IO = 1 << 20  # bytes per READ/WRITE at most, whatever the server offers
DEPTH = 4  # calls in flight for one large read or write
PENDING_LIMIT = 64 << 20  # unstable bytes kept for a resend before an automatic COMMIT
MAX_ENTRIES = 1 << 17  # names in one listing


def _getport(server: str, bind: Bind, timeout: float, prog: int, vers: int) -> int:
    conn = Connection(connect(server, PMAP_PORT, bind, timeout), timeout=timeout,
                      max_reply=4096, peer=f"portmapper {server}")
    try:
        port = conn.call(p.PMAP_PROG, p.PMAP_VERS, p.PMAP_GETPORT,
                         p.getport_args(prog, vers)).u32()
    finally:
        conn.close()
    if not 0 < port < 65536:
        raise NfsError(f"{server} has no program {prog} version {vers} over TCP "
                       "registered with its portmapper", server=server)
    return port


def _mnt(server: str, export: str, bind: Bind, timeout: float, auth: AuthSys) -> bytes:
    port = _getport(server, bind, timeout, p.MOUNT_PROG, p.MOUNT_VERS)
    conn = Connection(connect(server, port, bind, timeout), auth=auth, timeout=timeout,
                      max_reply=65536, peer=f"mountd {server}")
    try:
        return p.mnt_result(conn.call(p.MOUNT_PROG, p.MOUNT_VERS, p.MOUNTPROC_MNT,
                                      p.mnt_args(export)), export)
    finally:
        conn.close()


class V3Mount(NfsMount):
    version = "3"

    def __init__(self, server: str, export: str, bind: Bind, *, timeout: float, sync: bool,
                 auth: AuthSys | None = None, port: int | None = None) -> None:
        self.server, self.export, self.bind = server, export, bind
        self.timeout, self.sync, self.auth = timeout, sync, auth or AuthSys()
        self.lock = threading.RLock()
        self.root = _mnt(server, export, bind, timeout, self.auth)
        self.port = port or NFS_PORT
        self._conn: Connection | None = None
        info = self._fsinfo()
        self.rsize = max(4096, min(info.rtmax or MAX_IO, MAX_IO))
        self.wsize = max(4096, min(info.wtmax or MAX_IO, MAX_IO))

    # ------------------------------------------------------------- the wire

    def _connection(self) -> Connection:
        if self._conn is None or self._conn.broken is not None:
            if self._conn is not None:
                self._conn.close()
            self._conn = None
            sock = connect(self.server, self.port, self.bind, self.timeout)
            self._conn = Connection(sock, auth=self.auth, timeout=self.timeout,
                                    max_reply=MAX_IO + 65536, peer=f"NFS server {self.server}")
        return self._conn

    def call(self, proc: int, args: bytes) -> Unpacker:
        with self.lock:
            return self._connection().call(p.NFS_PROG, p.NFS_VERS, proc, args)

    def pipeline(self, proc: int, calls: list[bytes], handle: Callable[[int, Unpacker], T],
                 depth: int = DEPTH) -> list[T]:
        """Send `calls` with up to `depth` in flight; `handle(i, results)` each in order."""
        with self.lock:
            conn = self._connection()
            sent: list[int] = []
            out: list[T] = []
            try:
                for i in range(len(calls)):
                    while len(sent) - len(out) < depth and len(sent) < len(calls):
                        sent.append(conn.send(p.NFS_PROG, p.NFS_VERS, proc, calls[len(sent)]))
                    out.append(handle(i, conn.reply(sent[i])))
            except NfsError:
                # A refused or malformed result on a connection still in step: take the
                # replies still due, so none is left over in the connection's stash.
                for xid in sent[len(out) + 1:]:
                    if conn.broken is not None:
                        break
                    with contextlib.suppress(NfsError):
                        conn.reply(xid)
                raise
            return out

    # ------------------------------------------------------------- procedures

    def _fsinfo(self) -> p.FsInfo:
        u = self.call(p.FSINFO, Packer().opaque(self.root).data())
        p.ok(u, f"FSINFO {self.export}")
        p.post_op_attr(u)
        rtmax, _, _, wtmax, _, _, dtpref = (u.u32() for _ in range(7))
        return p.FsInfo(rtmax, wtmax, dtpref)

    def _lookup_in(self, directory: bytes, name: str, path: str) -> tuple[bytes, p.Attr | None]:
        u = self.call(p.LOOKUP, p.diropargs(Packer(), directory, name).data())
        p.ok(u, f"{self.server}:{self.export} {path}")
        fh = p.fh3(u)
        return fh, p.post_op_attr(u)

    def _walk(self, parts: list[str], path: str) -> tuple[bytes, p.Attr | None]:
        fh, attr = self.root, None
        for name in parts:
            fh, attr = self._lookup_in(fh, name, path)
        return fh, attr

    def getattr(self, fh: bytes, path: str) -> p.Attr:
        u = self.call(p.GETATTR, Packer().opaque(fh).data())
        p.ok(u, f"GETATTR {path}")
        return p.fattr3(u)

    def setsize(self, fh: bytes, size: int, path: str) -> None:
        args = p.sattr3(Packer().opaque(fh), size=size).boolean(False).data()
        p.ok(self.call(p.SETATTR, args), f"SETATTR {path}")

    def _create(self, directory: bytes, name: str, path: str, size: int | None) -> bytes:
        args = p.diropargs(Packer(), directory, name).u32(p.UNCHECKED)
        u = self.call(p.CREATE, p.sattr3(args, mode=0o644, size=size).data())
        p.ok(u, f"CREATE {path}")
        fh = u.optional(p.fh3)
        return fh if fh is not None else self._lookup_in(directory, name, path)[0]

    # ------------------------------------------------------------- the API

    def open_file(self, path: str, create: bool = False, size: int | None = None) -> NfsFile:
        if size is not None and size < 0:
            raise NfsError(f"a negative size for {path}", code="InvalidArgument")
        parent, name = split(path)
        with self.lock:
            directory, _ = self._walk(parent, path)
            try:
                fh, attr = self._lookup_in(directory, name, path)
            except NfsNotFound:
                if not create:
                    raise
                fh, attr = self._create(directory, name, path, size), None
            attr = attr or self.getattr(fh, path)
            if attr.kind != p.NF3REG:
                raise p.status_error(f"open {path}", 21 if attr.kind == p.NF3DIR else 22)
            if size is not None and attr.size != size:
                self.setsize(fh, size, path)
                attr = self.getattr(fh, path)
            return V3File(self, fh, path, attr.size)

    def listdir(self, path: str = "/") -> list[str]:
        with self.lock:
            fh, _ = self._walk(components(path), path)
            return sorted(e.name for e in self.readdirplus(fh, path)
                          if e.name not in (".", ".."))

    def readdirplus(self, fh: bytes, path: str) -> Iterator[p.Entry]:
        cookie, verifier, seen = 0, b"\0" * 8, 0
        while True:
            args = Packer().opaque(fh).u64(cookie).fixed(verifier, 8).u32(8192).u32(65536)
            u = self.call(p.READDIRPLUS, args.data())
            p.ok(u, f"READDIRPLUS {path}")
            p.post_op_attr(u)
            verifier = u.fixed(8)
            while u.boolean():
                u.u64()  # fileid
                name = u.string(p.MAX_NAME)
                cookie = u.u64()
                entry = p.Entry(name, cookie, p.post_op_attr(u), u.optional(p.fh3))
                seen += 1
                if seen > MAX_ENTRIES:
                    raise NfsProtocolError(f"more than {MAX_ENTRIES} names in {path}")
                yield entry
            if u.boolean():
                return

    def mkdir(self, path: str, exist_ok: bool = False) -> None:
        parent, name = split(path)
        with self.lock:
            directory, _ = self._walk(parent, path)
            args = p.sattr3(p.diropargs(Packer(), directory, name), mode=0o755).data()
            try:
                p.ok(self.call(p.MKDIR, args), f"MKDIR {path}")
            except NfsStatusError as err:
                if not (exist_ok and err.status == 17):
                    raise

    def remove(self, path: str) -> None:
        parent, name = split(path)
        with self.lock:
            directory, _ = self._walk(parent, path)
            _, attr = self._lookup_in(directory, name, path)
            proc = p.RMDIR if attr is not None and attr.kind == p.NF3DIR else p.REMOVE
            p.ok(self.call(proc, p.diropargs(Packer(), directory, name).data()),
                 f"REMOVE {path}")

    def exists(self, path: str) -> bool:
        try:
            with self.lock:
                self._walk(components(path), path)
        except NfsNotFound:
            return False
        return True

    def write_file(self, path: str, data: bytes) -> None:
        # Write first, then cut the tail: a reader never sees the file empty (HA heartbeats).
        with self.lock:
            f = self.open_file(path, create=True)
            assert isinstance(f, V3File)
            f.write_stable(0, bytes(data))
            if f.size > len(data):
                self.setsize(f.fh, len(data), path)

    def read_file(self, path: str, limit: int = MAX_READ_FILE) -> bytes:
        with self.lock:
            f = self.open_file(path)
            if f.size > limit:
                raise NfsError(f"{path} holds {f.size} bytes, more than the {limit} "
                               "read_file reads: open_file and read it in parts",
                               code="InvalidArgument")
            return f.read(0, f.size)

    def statfs(self) -> StatFs:
        u = self.call(p.FSSTAT, Packer().opaque(self.root).data())
        p.ok(u, f"FSSTAT {self.export}")
        p.post_op_attr(u)
        total, free, avail, files, ffree, _ = (u.u64() for _ in range(6))
        return StatFs(total, free, avail, files, ffree)

    def ping(self) -> float:
        started = time.monotonic()
        self.call(p.NULL, b"").done()
        return time.monotonic() - started

    def close(self) -> None:
        # No UMNT: MOUNT's list of clients is advisory (RFC 1813 5.2.3) and would take a
        # third connection; the NFS connection is what holds anything.
        with self.lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None


class V3File(NfsFile):
    def __init__(self, mount: V3Mount, fh: bytes, path: str, size: int) -> None:
        self.mount, self.fh, self.path, self._size = mount, fh, path, size
        self._pending: list[tuple[int, bytes]] = []  # UNSTABLE writes not yet committed
        self._pending_bytes = 0
        self._verifier: bytes | None = None
        self._closed = False

    @property
    def size(self) -> int:
        return self._size

    def _open(self) -> None:
        if self._closed:
            raise NfsError(f"{self.path} is closed", code="InvalidArgument")

    def read(self, offset: int, length: int) -> bytes:
        self._open()
        if offset < 0 or length < 0:
            raise NfsError("a negative offset or length", code="InvalidArgument")
        out = bytearray()
        while length > 0:
            step = self.mount.rsize
            wants = [(offset + i, min(step, length - i)) for i in range(0, length, step)]
            chunks = self._read_chunks(wants)
            got = 0
            for (_, n), (chunk, _) in zip(wants, chunks, strict=True):
                out += chunk
                got += len(chunk)
                if len(chunk) < n:
                    break
            offset, length = offset + got, length - got
            if got == 0 or any(eof for _, eof in chunks):
                break
        return bytes(out)

    def _read_chunks(self, wants: list[tuple[int, int]]) -> list[tuple[bytes, bool]]:
        """READ each (offset, count), pipelined: (data, eof) each."""
        args = [Packer().opaque(self.fh).u64(o).u32(n).data() for o, n in wants]

        def one(i: int, u: Unpacker) -> tuple[bytes, bool]:
            p.ok(u, f"READ {self.path}")
            p.post_op_attr(u)
            count, eof = u.u32(), u.boolean()
            data = u.opaque_view(wants[i][1])
            if count != len(data):
                raise NfsProtocolError(f"READ {self.path}: count {count}, {len(data)} bytes")
            return bytes(data), eof

        return self.mount.pipeline(p.READ, args, one)

    def _write(self, offset: int, data: bytes, stable: int) -> bytes:
        """Write all of `data` (short writes continued); the verifier of the last reply."""
        verifier = b""
        while data:
            step = self.mount.wsize
            view = memoryview(data)
            parts = [(offset + i, view[i:i + step]) for i in range(0, len(data), step)]
            args = [Packer().opaque(self.fh).u64(o).u32(len(c)).u32(stable).opaque(bytes(c))
                    .data() for o, c in parts]

            def one(_: int, u: Unpacker) -> tuple[int, bytes]:
                p.ok(u, f"WRITE {self.path}")
                p.wcc_data(u)
                count = u.u32()
                u.u32()  # committed: how stable the server made it
                return count, u.fixed(8)

            done, verifier = taken(self.path, parts, self.mount.pipeline(p.WRITE, args, one))
            offset, data = offset + done, data[done:]
        return verifier

    def write_stable(self, offset: int, data: bytes) -> None:
        self._open()
        self._write(offset, data, p.FILE_SYNC)
        self._size = max(self._size, offset + len(data))

    def write(self, offset: int, data: bytes) -> None:
        self._open()
        if offset < 0:
            raise NfsError("a negative offset", code="InvalidArgument")
        data = bytes(data)
        if not data:
            return
        if self.mount.sync:
            self.write_stable(offset, data)
            return
        with self.mount.lock:
            verifier = self._write(offset, data, p.UNSTABLE)
            if self._verifier is not None and verifier != self._verifier:
                self._resend()  # the server restarted since the earlier unstable writes
            self._verifier = verifier
            self._pending.append((offset, data))
            self._pending_bytes += len(data)
            self._size = max(self._size, offset + len(data))
            if self._pending_bytes > PENDING_LIMIT:
                self.flush()

    def _resend(self) -> None:
        for offset, data in self._pending:
            self._write(offset, data, p.FILE_SYNC)
        self._pending, self._pending_bytes, self._verifier = [], 0, None

    def flush(self) -> None:
        self._open()
        with self.mount.lock:
            if not self._pending:
                return
            u = self.mount.call(p.COMMIT, Packer().opaque(self.fh).u64(0).u32(0).data())
            p.ok(u, f"COMMIT {self.path}")
            p.wcc_data(u)
            if u.fixed(8) != self._verifier:
                self._resend()
            self._pending, self._pending_bytes, self._verifier = [], 0, None

    def close(self) -> None:
        if not self._closed:
            self.flush()
            self._closed = True
