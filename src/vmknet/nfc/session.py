"""One NFC connection on the serving side: requests in, replies out, files under datastores.

The server only ever touches paths `files.confine` accepts. Writes are
pipelined (unanswered unless ACK): the payload goes from the socket into one
reusable buffer with recv_into, then to the file with os.pwrite. READ_RANGE
answers with os.sendfile, file pages straight into the socket.
"""

from __future__ import annotations

import contextlib
import os
import socket
import stat
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

from ..profiling import profiled
from . import arrival
from . import protocol as p
from .files import Datastores, confine, data_ranges, punch_hole
from .protocol import Code, Flag, Header, NfcError, Op

CHUNK = 1 << 20
_MODES = {"read": os.O_RDONLY, "write": os.O_RDWR, "create": os.O_RDWR | os.O_CREAT}


class Session:
    def __init__(self, sock: socket.socket, lab: str, host: str, stores: Datastores,
                 timeout: float | None = 30.0) -> None:
        self.sock = sock
        self.lab, self.host, self.stores = lab, host, stores
        self.timeout = timeout
        self.handles: dict[int, int] = {}  # handle -> fd
        self.temporary: dict[str, int] = {}  # path -> handle: deleted unless renamed
        self.tracked: dict[int, arrival.Tracked] = {}  # handle -> arrival digests of its file
        self.read_back = 0  # blocks CHECKSUM had to read from disk (not hashed on arrival)
        self._next = 1
        self._buf = bytearray(CHUNK)
        self._ops: dict[Op, Callable[[Header, bytes], None]] = {
            Op.HELLO: self._hello, Op.OPEN: self._open, Op.READ_RANGE: self._read,
            Op.LIST: self._list, Op.STAT: self._stat, Op.MAP: self._map,
            Op.CHECKSUM: self._checksum, Op.SETSIZE: self._setsize, Op.RENAME: self._rename,
            Op.DELETE: self._delete, Op.CLOSE: self._close,
        }

    # ------------------------------------------------------------ loop

    def serve(self) -> None:
        """Until the peer closes or the connection breaks; then drop temporary files."""
        with profiled("nfc-session"):
            self._serve()

    def _serve(self) -> None:
        try:
            self.sock.settimeout(self.timeout)
            while True:
                try:
                    raw = p.recv_exact(self.sock, p.HEADER.size)
                except ConnectionResetError:
                    return
                head = p.decode_header(raw)
                if head.op is Op.WRITE_RANGE:
                    self._guarded(head, partial(self._write, head))
                    continue
                payload = p.recv_exact(self.sock, head.payload_len)
                handler = self._ops.get(head.op)
                if handler is None:
                    self._error(head, NfcError(Code.BAD_REQUEST, f"{head.op.name} not a request"))
                    continue
                self._guarded(head, partial(handler, head, payload))
        except (OSError, NfcError):
            return  # a broken connection: the client reconnects and resumes
        finally:
            self._cleanup()

    def _guarded(self, head: Header, call: Callable[[], None]) -> None:
        try:
            call()
        except NfcError as err:
            self._error(head, err)
        except (ConnectionError, TimeoutError):
            raise
        except OSError as err:
            code = Code.NOT_FOUND if isinstance(err, FileNotFoundError) else Code.IO
            self._error(head, NfcError(code, f"{err.strerror or err}"))

    def _cleanup(self) -> None:
        for path in list(self.temporary):
            with contextlib.suppress(OSError):
                os.unlink(path)
        for handle, fd in self.handles.items():
            t = self.tracked.pop(handle, None)
            if t is not None:
                arrival.release(fd, t)
            with contextlib.suppress(OSError):
                os.close(fd)
        self.handles.clear()
        with contextlib.suppress(OSError):
            self.sock.close()

    def _reply(self, head: Header, payload: bytes = b"") -> None:
        self.sock.sendall(p.encode(head.op, head.request_id, payload, Flag.REPLY))

    def _error(self, head: Header, err: NfcError) -> None:
        self.sock.sendall(p.encode(Op.ERROR, head.request_id, p.error_payload(err.code,
                                                                             err.message)))

    def _path(self, data: dict[str, Any], key: str = "path") -> Path:
        root = self.stores.root(self.lab, self.host, str(data.get("datastore", "")))
        return confine(root, str(data.get(key, "")))

    def _fd(self, handle: int) -> int:
        try:
            return self.handles[handle]
        except KeyError:
            raise NfcError(Code.BAD_HANDLE, f"no open handle {handle}") from None

    # ------------------------------------------------------------ ops

    def _hello(self, head: Header, payload: bytes) -> None:
        data = p.from_json(payload)
        if int(data.get("version", 0)) != p.VERSION:
            raise NfcError(Code.VERSION, f"server speaks NFC version {p.VERSION}")
        self._reply(head, p.to_json({"version": p.VERSION, "host": self.host,
                                     "capabilities": list(p.CAPABILITIES)}))

    def _open(self, head: Header, payload: bytes) -> None:
        data = p.from_json(payload)
        mode = str(data.get("mode", "read"))
        if mode not in _MODES:
            raise NfcError(Code.BAD_REQUEST, f"bad mode {mode!r}")
        path = self._path(data)
        if mode == "create":
            path.parent.mkdir(parents=True, exist_ok=True)
            confine(self.stores.root(self.lab, self.host, str(data["datastore"])),
                    str(data["path"]))  # re-check: mkdir must not have followed a new link
        fd = os.open(path, _MODES[mode] | os.O_CLOEXEC | os.O_NOFOLLOW, 0o644)
        try:
            # A new (empty) file sized by ftruncate is one hole: every block known zero.
            t = arrival.acquire(fd, fresh=mode == "create" and os.fstat(fd).st_size == 0)
            if mode == "create":
                with t.lock:
                    os.ftruncate(fd, int(data.get("size", 0)))  # the hole data blocks fill
                    size = os.fstat(fd).st_size
                    if size != t.size:
                        if t.fresh and t.size == 0 and not t.blocks:
                            t.size = size  # grew from empty: still all hole
                        else:
                            t.forget_all(size)
        except BaseException:
            os.close(fd)
            raise
        handle, self._next = self._next, self._next + 1
        self.handles[handle] = fd
        self.tracked[handle] = t
        if head.flags & Flag.TEMPORARY:
            self.temporary[str(path)] = handle
        self._reply(head, p.to_json({"handle": handle, "size": os.fstat(fd).st_size}))

    def _read(self, head: Header, payload: bytes) -> None:
        handle, offset, length = p.RANGE.unpack(payload)
        fd = self._fd(handle)
        length = max(0, min(length, os.fstat(fd).st_size - offset, p.MAX_PAYLOAD))
        self.sock.sendall(p.header(Op.READ_RANGE, head.request_id, length, Flag.REPLY))
        p.sendfile_all(self.sock, fd, offset, length, self.timeout)

    def _write(self, head: Header) -> None:
        if head.flags & Flag.ZERO:
            handle, offset, length = p.RANGE.unpack(p.recv_exact(self.sock, head.payload_len))
            target = self._fd(handle)
            if length:
                zt = self.tracked[handle]
                with zt.lock:
                    try:
                        punch_hole(target, offset, length)
                    finally:
                        zt.punched(offset, length)
        else:
            handle, offset = p.WRITE.unpack(p.recv_exact(self.sock, p.WRITE.size))
            left = head.payload_len - p.WRITE.size
            fd = self.handles.get(handle)
            t = self.tracked.get(handle)
            failed: OSError | None = None
            view = memoryview(self._buf)
            while left:  # always drain the data, so the stream stays in frame on errors
                n = min(left, len(view))
                p.recv_into_exact(self.sock, view[:n])
                if fd is not None and t is not None:
                    with t.lock:  # the disk change and its arrival digest go together
                        try:
                            done = 0
                            while done < n:
                                done += os.pwrite(fd, view[done:n], offset + done)
                        except OSError as err:  # e.g. ENOSPC: report once the frame is read
                            t.forget_all(os.fstat(fd).st_size)  # unknown what landed
                            failed, fd = err, None
                        else:
                            t.wrote(offset, view[:n])
                offset += n
                left -= n
            if failed is not None:
                raise failed
            if handle not in self.handles:
                raise NfcError(Code.BAD_HANDLE, f"no open handle {handle}")
        if head.flags & Flag.ACK:
            self._reply(head)

    def _list(self, head: Header, payload: bytes) -> None:
        data = p.from_json(payload)
        folder = self._path(data) if data.get("path") not in (None, "", ".") else \
            self.stores.root(self.lab, self.host, str(data.get("datastore", "")))
        entries = []
        for entry in sorted(os.scandir(folder), key=lambda e: e.name):
            st = entry.stat(follow_symlinks=False)
            kind = "dir" if stat.S_ISDIR(st.st_mode) else "file" if stat.S_ISREG(
                st.st_mode) else "other"
            entries.append({"name": entry.name, "type": kind, "size": st.st_size})
        self._reply(head, p.to_json({"entries": entries}))

    def _stat(self, head: Header, payload: bytes) -> None:
        st = os.stat(self._path(p.from_json(payload)), follow_symlinks=False)
        kind = "dir" if stat.S_ISDIR(st.st_mode) else "file"
        self._reply(head, p.to_json({"type": kind, "size": st.st_size,
                                     "allocated": st.st_blocks * 512, "mtime": st.st_mtime}))

    def _map(self, head: Header, payload: bytes) -> None:
        fd = self._fd(p.HANDLE.unpack(payload)[0])
        size = os.fstat(fd).st_size
        self._reply(head, p.to_json({"size": size, "ranges": data_ranges(fd, size)}))

    def _checksum(self, head: Header, payload: bytes) -> None:
        handle, block = p.HANDLE_SIZE.unpack(payload)
        if block <= 0 or block > p.MAX_PAYLOAD:
            raise NfcError(Code.BAD_REQUEST, f"bad block size {block}")
        fd = self._fd(handle)
        digests, read = self.tracked[handle].digests(fd, block)
        self.read_back += read
        self._reply(head, p.HANDLE_SIZE.pack(handle, block) + b"".join(digests))

    def _setsize(self, head: Header, payload: bytes) -> None:
        handle, size = p.HANDLE_SIZE.unpack(payload)
        fd = self._fd(handle)
        t = self.tracked[handle]
        with t.lock:
            os.ftruncate(fd, size)
            if os.fstat(fd).st_size != t.size:
                t.forget_all(os.fstat(fd).st_size)
        self._reply(head)

    def _rename(self, head: Header, payload: bytes) -> None:
        data = p.from_json(payload)
        src, dst = self._path(data, "src"), self._path(data, "dst")
        handle = self.temporary.pop(str(src), None)
        if handle is not None and handle in self.handles:
            os.fsync(self.handles[handle])  # the data is on disk before the name says done
        os.rename(src, dst)  # atomic: a reader sees the old file or the whole new one
        self._reply(head)

    def _delete(self, head: Header, payload: bytes) -> None:
        path = self._path(p.from_json(payload))
        self.temporary.pop(str(path), None)
        os.unlink(path)
        self._reply(head)

    def _close(self, head: Header, payload: bytes) -> None:
        handle = p.HANDLE.unpack(payload)[0]
        fd = self._fd(handle)
        t = self.tracked.pop(handle, None)
        if t is not None:
            arrival.release(fd, t)
        os.close(fd)
        del self.handles[handle]
        self._reply(head)
