"""Source -> replication server messages (TCP 44046): a JSON head, then raw block data.

    u32 head length | JSON head | head["data"] bytes

JSON keeps the control readable in a capture; block contents go raw after it.
"""

from __future__ import annotations

import json
import socket
import struct
from typing import Any

from ..nfc.protocol import recv_exact

LEN = struct.Struct("!I")
PORT = 44046  # SPEC section 10: vSphere Replication (ongoing replication to the server)
# Checked before anything is read into memory: a peer's declared length allocates nothing.
MAX_HEAD = 16 << 20  # a delta's head lists its block numbers: 2 M blocks = 128 GiB changed
MAX_DATA = 1 << 30  # one delta's block data (the server spools it whole)


def send(sock: socket.socket, head: dict[str, Any], data: bytes = b"") -> int:
    raw = json.dumps({**head, "data": len(data)}).encode()
    sock.sendall(LEN.pack(len(raw)) + raw)
    if data:
        sock.sendall(data)
    return LEN.size + len(raw) + len(data)


def recv(sock: socket.socket) -> tuple[dict[str, Any], bytes]:
    (n,) = LEN.unpack(recv_exact(sock, LEN.size))
    if n > MAX_HEAD:
        raise ValueError(f"message head of {n} bytes exceeds {MAX_HEAD}")
    head = json.loads(recv_exact(sock, n))
    if not isinstance(head, dict):
        raise ValueError("message head is not an object")
    size = int(head.get("data", 0))
    if not 0 <= size <= MAX_DATA:
        raise ValueError(f"message data of {size} bytes outside 0..{MAX_DATA}")
    return head, recv_exact(sock, size) if size else b""
