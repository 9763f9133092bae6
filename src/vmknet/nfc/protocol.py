"""NFC wire format: length-prefixed binary frames (docs/nfc.md).

    frame  = length:u32 | op:u8 | flags:u8 | status:u16 | request_id:u32 | payload
    length = 8 + len(payload)          (everything after the length field)

A reply carries the request's op and id with FLAG_REPLY set; a failure is an
ERROR frame (code:u16 | UTF-8 message) with the failed request's id. Control
ops (HELLO, OPEN, LIST, STAT, MAP replies, RENAME, DELETE) carry a UTF-8 JSON
object: they are rare and JSON keeps them readable in a capture. The hot path
(READ_RANGE, WRITE_RANGE, CHECKSUM) uses fixed big-endian structs and raw bytes,
so a data frame's payload can go from file to socket with os.sendfile.
"""

from __future__ import annotations

import json
import select
import socket
import struct
from dataclasses import dataclass
from enum import IntEnum, IntFlag
from typing import Any

VERSION = 1
PORT = 902  # SPEC section 10: NFC / provisioning
CAPABILITIES = ("sparse", "sendfile", "checksum-crc32", "resume", "punch-hole")
MAX_PAYLOAD = 16 << 20  # a frame never carries more than this; anything larger is a bug
HEADER = struct.Struct("!IBBHI")  # length, op, flags, status, request id
RANGE = struct.Struct("!IQQ")  # handle, offset, length: READ_RANGE, WRITE_RANGE|ZERO
WRITE = struct.Struct("!IQ")  # handle, offset; the data follows
HANDLE = struct.Struct("!I")  # MAP, CLOSE
HANDLE_SIZE = struct.Struct("!IQ")  # CHECKSUM (block size), SETSIZE (new size)
ERROR_CODE = struct.Struct("!H")


class Op(IntEnum):
    HELLO = 1
    OPEN = 2
    READ_RANGE = 3
    WRITE_RANGE = 4
    LIST = 5
    STAT = 6
    MAP = 7
    CHECKSUM = 8
    SETSIZE = 9  # TRUNCATE and SETSIZE are one op: ftruncate grows with a hole, or cuts
    RENAME = 10
    DELETE = 11
    CLOSE = 12
    ERROR = 13


class Flag(IntFlag):
    NONE = 0
    REPLY = 0x80
    ACK = 0x01  # WRITE_RANGE: answer it (otherwise writes are pipelined, unanswered)
    ZERO = 0x02  # WRITE_RANGE: no data, make [offset, offset+length) a hole (or zeros)
    TEMPORARY = 0x04  # OPEN: delete the file when the connection ends before RENAME


class Code(IntEnum):
    """ERROR codes (errno-like, stable for clients)."""

    BAD_REQUEST = 1
    NOT_FOUND = 2
    EXISTS = 3
    ACCESS = 4  # path escapes its datastore, or the datastore is unknown
    BAD_HANDLE = 5
    IO = 6
    VERSION = 7


class NfcError(Exception):
    """An ERROR frame from the peer, or a protocol violation."""

    def __init__(self, code: Code, message: str) -> None:
        super().__init__(f"NFC {code.name}: {message}")
        self.code = code
        self.message = message


@dataclass(frozen=True, slots=True)
class Header:
    op: Op
    flags: Flag
    status: int
    request_id: int
    payload_len: int

    @property
    def size(self) -> int:
        """Bytes of the whole frame on the wire."""
        return HEADER.size + self.payload_len


def header(op: Op, request_id: int, payload_len: int, flags: Flag = Flag.NONE,
           status: int = 0) -> bytes:
    if payload_len > MAX_PAYLOAD:
        raise ValueError(f"NFC payload of {payload_len} bytes exceeds {MAX_PAYLOAD}")
    return HEADER.pack(8 + payload_len, int(op), int(flags), status, request_id)


def encode(op: Op, request_id: int, payload: bytes = b"", flags: Flag = Flag.NONE) -> bytes:
    return header(op, request_id, len(payload), flags) + payload


def decode_header(raw: bytes) -> Header:
    length, op, flags, status, rid = HEADER.unpack(raw)
    if length < 8 or length - 8 > MAX_PAYLOAD:
        raise NfcError(Code.BAD_REQUEST, f"bad frame length {length}")
    try:
        kind = Op(op)
    except ValueError:
        raise NfcError(Code.BAD_REQUEST, f"unknown op {op}") from None
    return Header(kind, Flag(flags), status, rid, length - 8)


def decode(frame: bytes) -> tuple[Header, bytes]:
    """A whole frame (as from `encode`) into its header and payload."""
    head = decode_header(frame[:HEADER.size])
    payload = frame[HEADER.size:]
    if len(payload) != head.payload_len:
        raise NfcError(Code.BAD_REQUEST, f"frame says {head.payload_len} bytes, has {len(payload)}")
    return head, payload


def to_json(data: dict[str, Any]) -> bytes:
    return json.dumps(data, separators=(",", ":")).encode()


def from_json(payload: bytes) -> dict[str, Any]:
    try:
        data = json.loads(payload.decode())
    except (UnicodeDecodeError, ValueError) as err:
        raise NfcError(Code.BAD_REQUEST, f"payload is not JSON: {err}") from None
    if not isinstance(data, dict):
        raise NfcError(Code.BAD_REQUEST, "payload is not a JSON object")
    return data


def error_payload(code: Code, message: str) -> bytes:
    return ERROR_CODE.pack(int(code)) + message.encode()[:4096]


def parse_error(payload: bytes) -> NfcError:
    (code,) = ERROR_CODE.unpack(payload[:2])
    try:
        kind = Code(code)
    except ValueError:
        kind = Code.IO
    return NfcError(kind, payload[2:].decode(errors="replace"))


# ------------------------------------------------------------------ socket helpers


def recv_exact(sock: socket.socket, n: int) -> bytes:
    buf = bytearray(n)
    recv_into_exact(sock, memoryview(buf))
    return bytes(buf)


def recv_into_exact(sock: socket.socket, view: memoryview) -> None:
    got = 0
    while got < len(view):
        n = sock.recv_into(view[got:])
        if n == 0:
            raise ConnectionResetError("NFC peer closed the connection")
        got += n


def read_frame(sock: socket.socket) -> tuple[Header, bytes]:
    head = decode_header(recv_exact(sock, HEADER.size))
    return head, recv_exact(sock, head.payload_len)


def sendfile_all(sock: socket.socket, fd: int, offset: int, count: int,
                 timeout: float | None) -> None:
    """os.sendfile until `count` bytes went: file pages go to the socket without a user copy.

    Sockets from traffic.sockets have a timeout, which makes them non-blocking
    underneath: wait for room with select instead of failing on EAGAIN.
    """
    import os

    end = offset + count
    while offset < end:
        try:
            sent = os.sendfile(sock.fileno(), fd, offset, end - offset)
        except BlockingIOError:
            _, ready, _ = select.select([], [sock], [], timeout)
            if not ready:
                raise TimeoutError("NFC send timed out") from None
            continue
        if sent == 0:
            raise ConnectionResetError("NFC source file ended early (changed during copy?)")
        offset += sent
