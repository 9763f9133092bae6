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


def send(sock: socket.socket, head: dict[str, Any], data: bytes = b"") -> int:
    raw = json.dumps({**head, "data": len(data)}).encode()
    sock.sendall(LEN.pack(len(raw)) + raw)
    if data:
        sock.sendall(data)
    return LEN.size + len(raw) + len(data)


def recv(sock: socket.socket) -> tuple[dict[str, Any], bytes]:
    (n,) = LEN.unpack(recv_exact(sock, LEN.size))
    head: dict[str, Any] = json.loads(recv_exact(sock, n))
    size = int(head.get("data", 0))
    return head, recv_exact(sock, size) if size else b""
