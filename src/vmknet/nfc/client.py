"""An NFC client on one connected socket (from traffic.sockets.connect): one request at a time.

WRITE_RANGE is pipelined: the client does not wait for an answer, and a
failed write comes back as an ERROR frame that the next answered request
reads first (and raises). `wire` counts every byte sent and received.
"""

from __future__ import annotations

import contextlib
import os
import socket
from typing import Any

from . import protocol as p
from .files import DIGEST_SIZE
from .plan import TokenBucket
from .protocol import Code, Flag, NfcError, Op

SEND_CHUNK = 256 << 10  # one WRITE_RANGE frame at most; the bucket is asked per frame


class NfcClient:
    def __init__(self, sock: socket.socket, timeout: float | None = 30.0) -> None:
        self.sock = sock
        self.timeout = timeout
        sock.settimeout(timeout)
        if sock.family in (socket.AF_INET, socket.AF_INET6):  # small requests go at once
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.wire = 0
        self._rid = 0

    def _send(self, op: Op, payload: bytes = b"", flags: Flag = Flag.NONE) -> int:
        self._rid += 1
        frame = p.encode(op, self._rid, payload, flags)
        self.sock.sendall(frame)
        self.wire += len(frame)
        return self._rid

    def _answer(self, rid: int) -> bytes:
        while True:
            head, payload = p.read_frame(self.sock)
            self.wire += head.size
            if head.op is Op.ERROR:
                raise p.parse_error(payload)
            if head.request_id == rid and head.flags & Flag.REPLY:
                return payload
            raise NfcError(Code.BAD_REQUEST, f"unexpected {head.op.name} #{head.request_id}")

    def call(self, op: Op, payload: bytes = b"", flags: Flag = Flag.NONE) -> bytes:
        return self._answer(self._send(op, payload, flags))

    def call_json(self, op: Op, data: dict[str, Any], flags: Flag = Flag.NONE) -> dict[str, Any]:
        answer = self.call(op, p.to_json(data), flags)
        return p.from_json(answer) if answer else {}

    # ------------------------------------------------------------ ops

    def hello(self, host: str) -> dict[str, Any]:
        return self.call_json(Op.HELLO, {"version": p.VERSION, "host": host,
                                         "capabilities": list(p.CAPABILITIES)})

    def open(self, datastore: str, path: str, mode: str, size: int = 0,
             temporary: bool = False) -> tuple[int, int]:
        """(handle, current size)."""
        flags = Flag.TEMPORARY if temporary else Flag.NONE
        got = self.call_json(Op.OPEN, {"datastore": datastore, "path": path, "mode": mode,
                                       "size": size}, flags)
        return int(got["handle"]), int(got["size"])

    def stat(self, datastore: str, path: str) -> dict[str, Any] | None:
        try:
            return self.call_json(Op.STAT, {"datastore": datastore, "path": path})
        except NfcError as err:
            if err.code is Code.NOT_FOUND:
                return None
            raise

    def listdir(self, datastore: str, path: str = "") -> list[dict[str, Any]]:
        entries = self.call_json(Op.LIST, {"datastore": datastore, "path": path})["entries"]
        return list(entries)

    def map(self, handle: int) -> list[tuple[int, int]]:
        got = self.call_json_raw(Op.MAP, p.HANDLE.pack(handle))
        return [(int(a), int(b)) for a, b in got["ranges"]]

    def call_json_raw(self, op: Op, payload: bytes) -> dict[str, Any]:
        return p.from_json(self.call(op, payload))

    def checksum(self, handle: int, block: int) -> list[bytes]:
        # The server may read back blocks it did not hash on arrival: minutes for a big disk.
        self.sock.settimeout(None if self.timeout is None else self.timeout + 600)
        try:
            answer = self.call(Op.CHECKSUM, p.HANDLE_SIZE.pack(handle, block))
        finally:
            self.sock.settimeout(self.timeout)
        body = answer[p.HANDLE_SIZE.size:]
        return [body[i:i + DIGEST_SIZE] for i in range(0, len(body), DIGEST_SIZE)]

    def setsize(self, handle: int, size: int) -> None:
        self.call(Op.SETSIZE, p.HANDLE_SIZE.pack(handle, size))

    def rename(self, datastore: str, src: str, dst: str) -> None:
        self.call_json(Op.RENAME, {"datastore": datastore, "src": src, "dst": dst})

    def delete(self, datastore: str, path: str) -> None:
        self.call_json(Op.DELETE, {"datastore": datastore, "path": path})

    def close_handle(self, handle: int) -> None:
        self.call(Op.CLOSE, p.HANDLE.pack(handle))

    def read_range(self, handle: int, offset: int, length: int) -> bytes:
        return self.call(Op.READ_RANGE, p.RANGE.pack(handle, offset, length))

    def zero_range(self, handle: int, offset: int, length: int) -> None:
        self._send(Op.WRITE_RANGE, p.RANGE.pack(handle, offset, length), Flag.ZERO)

    def send_range(self, handle: int, fd: int, offset: int, length: int,
                   bucket: TokenBucket | None = None) -> int:
        """Pipelined WRITE_RANGE frames of [offset, offset+length) of local file `fd`.

        The header goes with send(), the data with os.sendfile straight from the
        page cache. Returns the bytes put on the wire.
        """
        sent = 0
        end = offset + length
        while offset < end:
            n = min(SEND_CHUNK, end - offset)
            if bucket is not None:
                bucket.consume(n)
            self._rid += 1
            head = p.header(Op.WRITE_RANGE, self._rid, p.WRITE.size + n)
            self.sock.sendall(head + p.WRITE.pack(handle, offset))
            p.sendfile_all(self.sock, fd, offset, n, self.timeout)
            sent += p.HEADER.size + p.WRITE.size + n
            offset += n
        self.wire += sent
        return sent

    def sync(self, handle: int) -> None:
        """Wait until every pipelined write before it is done (an answered empty write).

        Frames are handled in order, so its answer (or an earlier write's ERROR) means done.
        """
        self.call(Op.WRITE_RANGE, p.RANGE.pack(handle, 0, 0), Flag.ZERO | Flag.ACK)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.close()

    @staticmethod
    def local_size(fd: int) -> int:
        return os.fstat(fd).st_size
