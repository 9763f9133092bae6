"""The VM process's control channel: JSON lines over a unix socket, fds by SCM_RIGHTS.

A request is one JSON object on one line (with the migration's sockets attached
as file descriptors, `migrate`); the reply is one or more JSON lines (a
migration streams progress events, then its report). Unix sockets, because the
VM and the command run on the same machine and only root may connect (0600).
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator, Sequence
from typing import Any

from ..errors import NotFound

MAX_FDS = 64
TIMEOUT = 10.0

Message = dict[str, Any]


def send_line(sock: socket.socket, message: Message, fds: Sequence[int] = ()) -> None:
    data = (json.dumps(message) + "\n").encode()
    if fds:
        socket.send_fds(sock, [data], list(fds))
    else:
        sock.sendall(data)


class LineReader:
    """Newline-framed JSON messages from a stream socket (fds kept from the first read)."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buf = b""
        self.fds: list[int] = []

    def read(self) -> Message | None:
        while b"\n" not in self.buf:
            data, fds, _, _ = socket.recv_fds(self.sock, 1 << 16, MAX_FDS)
            self.fds.extend(fds)
            if not data:
                return None
            self.buf += data
        line, self.buf = self.buf.split(b"\n", 1)
        value = json.loads(line)
        return value if isinstance(value, dict) else None


def connect(path: str, timeout: float | None = TIMEOUT) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    try:
        sock.connect(path)
    except OSError as err:
        sock.close()
        raise NotFound(f"VM control socket {path} does not answer ({err.strerror}): "
                       "the VM process is gone", socket=path) from None
    return sock


def request(path: str, message: Message, timeout: float = TIMEOUT) -> Message:
    """One request, one reply."""
    with connect(path, timeout) as sock:
        send_line(sock, message)
        reply = LineReader(sock).read()
    if reply is None:
        raise NotFound(f"VM control socket {path} closed without a reply", socket=path)
    return reply


def stream(path: str, message: Message, fds: Sequence[int] = (),
           timeout: float | None = None) -> Iterator[Message]:
    """One request, then every reply line until the VM closes the channel."""
    with connect(path, timeout) as sock:
        send_line(sock, message, fds)
        reader = LineReader(sock)
        while (reply := reader.read()) is not None:
            yield reply
