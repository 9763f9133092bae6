"""The vMotion data stream: fixed 24-byte frame headers, then page data (pure framing).

    kind u8, 3 pad, round u32, first page u64, page count u32, payload length u32

PAGES   a run of `count` contiguous pages from `start`; payload = the pages
        (encrypted: 12-byte nonce + AES-GCM ciphertext and tag, header as AAD)
ZERO    a run of zero pages: no payload (zero pages are not sent as data)
ROUND_END / ACK   the round barrier: the target acks once everything before it on
        this stream is in memory, so round r is applied before round r+1 is sent
BYE     the source is done with this stream

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
PAGES, ZERO, ROUND_END, ACK, BYE = 1, 2, 3, 4, 5
KINDS = frozenset({PAGES, ZERO, ROUND_END, ACK, BYE})
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


def read_frame(sock: socket.socket) -> Frame:
    head = bytearray(HEADER.size)
    recv_exact(sock, memoryview(head))
    return unpack(head)
