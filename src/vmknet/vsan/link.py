"""A connection from one host to a node's I/O service (TCP 2233), the key proved both ways.

The socket is made in the stack namespace of the caller's vSAN adapter and bound
to its address, so the flow leaves by the adapter resolve() picked (PATH-5) and by
nothing else (SEC-3); a host reaches its own node the same way, on its own address.
"""

from __future__ import annotations

import contextlib
import socket
from typing import Any

from ..traffic.place import stack_ns
from ..traffic.sockets import tcp_socket
from . import wire
from .config import Route

CONNECT_TIMEOUT = 1.0  # s
IO_TIMEOUT = 1.0  # s: a replica that does not answer in this long is lost (aim: pause <= 2 s)


def dial(lab: str, host: str, route: Route, key: bytes, cluster: str,
         timeout: float = IO_TIMEOUT, port: int = wire.IO_PORT) -> socket.socket:
    sock = tcp_socket(stack_ns(lab, host, route.stack), socket.AF_INET)
    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.settimeout(CONNECT_TIMEOUT)
        sock.bind((route.source, 0))
        sock.connect((route.address, port))
        wire.client_handshake(sock, key, cluster, host)
        sock.settimeout(timeout)
    except BaseException:
        with contextlib.suppress(OSError):
            sock.close()
        raise
    return sock


def call(sock: socket.socket, head: dict[str, Any],
         data: bytes | memoryview = b"") -> tuple[dict[str, Any], bytearray]:
    """One request and its reply; a node's `error` reply is a VsanError."""
    wire.send(sock, head, data)
    reply, out = wire.recv(sock)
    if reply.get("op") == "error":
        raise wire.VsanError(f"vSAN node: {reply.get('message')}")
    return reply, out
