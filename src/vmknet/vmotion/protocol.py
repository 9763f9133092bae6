"""The vMotion data stream: fixed 24-byte frame headers, then page data (pure framing).

    kind u8, 3 pad, round u32, first page u64, page count u32, payload length u32

PAGES   a run of `count` contiguous pages from `start`; payload = the pages
        (encrypted: 12-byte nonce + AES-GCM ciphertext and tag, header as AAD)
ZERO    a run of zero pages: no payload (zero pages are not sent as data)
ROUND_END / ACK   the round barrier: the target acks once everything before it on
        this stream is in memory, so round r is applied before round r+1 is sent
BYE     the source is done with this stream
CHUNK   `count` pages from `start` in one frame (what a vMotion stream sends): payload =
        a bitmap of the pages holding data (bit i of byte i // 8, LSB first, ceil(count
        / 8) bytes), then those pages in order; a page whose bit is clear is zero
        (encrypted: nonce + AES-GCM of bitmap and pages, header as AAD). One frame and
        one system call per 1 MiB of guest memory however its zero pages lie: the
        PAGES/ZERO runs cost a frame per run (~54 per MiB in the workload's mix,
        docs/perf.md). PAGES and ZERO stay for FT checkpoints.

One stream per adapter pair (multi-NIC); the page's round number lets the target
drop stale data of a stream that died and was redone on another (see target.py).
The control messages of a migration (hello, switchover, abort) are JSON lines on
the management connection, not here.
"""

from __future__ import annotations

import socket
import struct
from typing import NamedTuple

HEADER = struct.Struct("!B3xIQII")
PAGES, ZERO, ROUND_END, ACK, BYE, CHUNK = 1, 2, 3, 4, 5, 6
KINDS = frozenset({PAGES, ZERO, ROUND_END, ACK, BYE, CHUNK})
MAX_IOV = 1024  # buffers per sendmsg/recvmsg (Linux's IOV_MAX)
MAX_PAYLOAD = 64 << 20  # a frame never carries more (a corrupt length cannot make us allocate GBs)


class ProtocolError(Exception):
    """The peer sent something that is not a frame of this protocol."""


class Frame(NamedTuple):
    kind: int
    round: int
    start: int
    pages: int
    length: int


def pack(kind: int, rnd: int, start: int = 0, count: int = 0, length: int = 0) -> bytes:
    return HEADER.pack(kind, rnd, start, count, length)


def unpack(data: bytes | bytearray | memoryview) -> Frame:
    frame = Frame(*HEADER.unpack(data))
    if frame.kind not in KINDS or frame.length > MAX_PAYLOAD:
        raise ProtocolError(f"bad frame header {bytes(data).hex()}")
    return frame


def recv_exact(sock: socket.socket, into: memoryview) -> None:
    """Fill `into` from `sock`; EOF before that is a ConnectionError. MSG_WAITALL: one
    system call (one wake-up, one take of the GIL) per frame on a blocking socket, not
    one per segment that arrived."""
    got = 0
    while got < len(into):
        n = sock.recv_into(into[got:], 0, socket.MSG_WAITALL)
        if n == 0:
            raise ConnectionError("stream closed by the peer")
        got += n


def bitmap_bytes(count: int) -> int:
    """Bytes of a CHUNK frame's page bitmap for `count` pages."""
    return (count + 7) // 8


def recv_exact_into(sock: socket.socket, views: list[memoryview]) -> None:
    """Fill every view of `views` in order from `sock` (scatter: one recvmsg_into per
    frame with MSG_WAITALL, straight into guest memory, however its runs lie)."""
    views = [v for v in views if len(v)]
    while views:
        n = sock.recvmsg_into(views[:MAX_IOV], 0, socket.MSG_WAITALL)[0]
        if n == 0:
            raise ConnectionError("stream closed by the peer")
        while n and views:  # drop what was filled, shorten the view it stopped in
            if n >= len(views[0]):
                n -= len(views[0])
                views.pop(0)
            else:
                views[0] = views[0][n:]
                n = 0


def send_all(sock: socket.socket, buffers: list[bytes | memoryview]) -> int:
    """Send every buffer in order with as few sendmsg calls as the kernel allows (gather:
    a header and the page runs of guest memory in one system call, no copy); bytes sent."""
    views = [memoryview(b).cast("B") for b in buffers if len(b)]
    total = sum(len(v) for v in views)
    while views:
        n = sock.sendmsg(views[:MAX_IOV])
        while n and views:
            if n >= len(views[0]):
                n -= len(views[0])
                views.pop(0)
            else:
                views[0] = views[0][n:]
                n = 0
    return total


def read_frame(sock: socket.socket) -> Frame:
    head = bytearray(HEADER.size)
    recv_exact(sock, memoryview(head))
    return unpack(head)
