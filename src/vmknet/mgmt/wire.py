"""The management channel's messages: length-prefixed JSON objects, bounded.

Controller, agents and the CLI exchange requests `{"id", "method", "params"}`
and replies `{"id", "result"}` or `{"id", "error": {"code", "message"}}`, each
one frame: a 4-byte big-endian length, then that many bytes of UTF-8 JSON. The
length is checked against `MAX_FRAME` before anything is allocated, a frame
must decode to an object, and a method must be one the receiver registered:
what a peer merely declares is never trusted.
"""

from __future__ import annotations

import json
import socket
import struct
from collections.abc import Callable, Mapping
from typing import Any

from ..errors import VmknetError, from_dict

LENGTH = struct.Struct("!I")
MAX_FRAME = 4 * 1024 * 1024  # a host's whole desired state fits many times over

Handler = Callable[[dict[str, Any]], Any]


class WireError(VmknetError):
    default_code = "ProtocolError"


class PeerClosed(WireError):
    default_code = "PeerClosed"


def _recv_exact(sock: socket.socket, n: int) -> bytes:
    buf = bytearray(n)
    view = memoryview(buf)
    got = 0
    while got < n:
        k = sock.recv_into(view[got:])
        if k == 0:
            raise PeerClosed("The peer closed the management connection")
        got += k
    return bytes(buf)


def frame(message: Mapping[str, Any]) -> bytes:
    """`message` as one frame: its length, then its JSON."""
    body = json.dumps(message, separators=(",", ":")).encode()
    if len(body) > MAX_FRAME:
        raise WireError(f"Message of {len(body)} bytes exceeds {MAX_FRAME}")
    return LENGTH.pack(len(body)) + body


def size(header: bytes, limit: int = MAX_FRAME) -> int:
    """The length a frame's header announces, refused over `limit` before any allocation."""
    (announced,) = LENGTH.unpack(header)
    if announced > limit:
        raise WireError(f"Frame of {announced} bytes announced; the limit is {limit}")
    return int(announced)


def decode(body: bytes) -> dict[str, Any]:
    try:
        message = json.loads(body)
    except (UnicodeDecodeError, ValueError) as err:
        raise WireError(f"Frame is not JSON: {err}") from err
    if not isinstance(message, dict):
        raise WireError("Frame is not a JSON object")
    return message


def send(sock: socket.socket, message: Mapping[str, Any]) -> None:
    sock.sendall(frame(message))


def recv(sock: socket.socket, limit: int = MAX_FRAME) -> dict[str, Any]:
    return decode(_recv_exact(sock, size(_recv_exact(sock, LENGTH.size), limit)))


def call(sock: socket.socket, method: str, params: Mapping[str, Any] | None = None,
         request_id: int = 1) -> Any:
    """One request, its reply's result; an error reply is raised as a VmknetError."""
    send(sock, {"id": request_id, "method": method, "params": dict(params or {})})
    reply = recv(sock)
    if reply.get("id") != request_id:
        raise WireError(f"Reply to request {reply.get('id')!r}, expected {request_id}")
    error = reply.get("error")
    if isinstance(error, dict):
        raise from_dict(error)
    return reply.get("result")


def answer(sock: socket.socket, handlers: Mapping[str, Handler],
           limit: int = MAX_FRAME) -> bool:
    """Read one request, run its handler, send the reply; False when the peer closed."""
    try:
        request = recv(sock, limit)
    except PeerClosed:
        return False
    send(sock, reply(handlers, request))
    return True


def reply(handlers: Mapping[str, Handler], request: Mapping[str, Any]) -> dict[str, Any]:
    """The reply to `request`: its handler's result, or the error it raised, coded."""
    request_id = request.get("id")
    method, params = request.get("method"), request.get("params", {})
    handler = handlers.get(method) if isinstance(method, str) else None
    if handler is None or not isinstance(params, dict):
        return {"id": request_id, "error": {"code": "NotSupported",
                                            "message": f"Unknown method {method!r}"}}
    try:
        return {"id": request_id, "result": handler(params)}
    except VmknetError as err:
        return {"id": request_id, "error": err.to_dict()}
    except (KeyError, TypeError, ValueError) as err:  # a request missing or mistyping a field
        return {"id": request_id, "error": {
            "code": "InvalidArgument", "message": f"Bad parameters for {method}: {err!r}"[:300],
            "details": {}}}
