"""vSAN's two channels between vSAN adapters, and how every peer proves the cluster key.

TCP 2233 (object I/O, vSAN's RDT port): frames of

    u32 head length | JSON head | head["n"] bytes of data

UDP 12321 (membership heartbeats, vSAN's unicast agent port): one datagram of

    JSON body | 32-byte HMAC-SHA256 of the body under the cluster key

Every length a peer declares is checked against a maximum before anything is
read or allocated. A TCP connection is served only after both ends proved the
per-cluster key (the controller's, or the CLI's in a lab without one) in a
challenge/response: the server's random challenge, the client's answer
(HMAC over cluster, both nonces and the client's host) and the server's answer
back, so neither side talks to a peer without the key and no answer can be replayed (VSAN-5).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import socket
import struct
from typing import Any

from ..errors import VmknetError

IO_PORT = 2233  # SPEC section 10: vSAN (RDT)
HB_PORT = 12321  # SPEC section 10: vSAN unicast agent channel
LEN = struct.Struct("!I")
MAX_HEAD = 64 << 10  # a head is a few fields
MAX_DATA = 64 << 20  # one read or write of an object
MAX_DATAGRAM = 4096  # a heartbeat lists at most a cluster's members
MAC = 32
NONCE = 16


class VsanError(VmknetError):
    default_code = "VsanError"


class AuthError(VsanError):
    default_code = "VsanAuth"


def recv_into(sock: socket.socket, n: int) -> bytearray:
    """Exactly `n` bytes, received in place (no copy: the data path's buffers are large)."""
    buf = bytearray(n)
    view, got = memoryview(buf), 0
    while got < n:
        k = sock.recv_into(view[got:], n - got)
        if k == 0:
            raise ConnectionError("the vSAN peer closed the connection")
        got += k
    return buf


def recv_exact(sock: socket.socket, n: int) -> bytes:
    return bytes(recv_into(sock, n))


def send(sock: socket.socket, head: dict[str, Any], data: bytes | memoryview = b"") -> None:
    raw = json.dumps({**head, "n": len(data)}, separators=(",", ":")).encode()
    if data and len(data) <= 256 << 10:
        sock.sendall(LEN.pack(len(raw)) + raw + bytes(data))
        return
    sock.sendall(LEN.pack(len(raw)) + raw)
    if data:
        sock.sendall(data)


def recv(sock: socket.socket) -> tuple[dict[str, Any], bytearray]:
    (n,) = LEN.unpack(recv_exact(sock, LEN.size))
    if n > MAX_HEAD:
        raise ValueError(f"vSAN frame head of {n} bytes exceeds {MAX_HEAD}")
    head = json.loads(recv_exact(sock, n))
    if not isinstance(head, dict):
        raise ValueError("vSAN frame head is not an object")
    size = head.get("n", 0)
    if not isinstance(size, int) or not 0 <= size <= MAX_DATA:
        raise ValueError(f"vSAN frame data of {str(size)[:20]} bytes outside 0..{MAX_DATA}")
    return head, recv_into(sock, size)


def mac(key: bytes, *parts: str) -> str:
    return hmac.new(key, "|".join(parts).encode(), hashlib.sha256).hexdigest()


def server_handshake(sock: socket.socket, key: bytes, cluster: str) -> str:
    """The peer's host once it proved the key; AuthError (nothing served) otherwise."""
    nonce = os.urandom(NONCE).hex()
    send(sock, {"op": "challenge", "cluster": cluster, "nonce": nonce})
    head, _ = recv(sock)
    host, theirs = str(head.get("host", ""))[:64], str(head.get("nonce", ""))[:64]
    want = mac(key, "client", cluster, nonce, theirs, host)
    if head.get("op") != "auth" or not hmac.compare_digest(str(head.get("mac", "")), want):
        raise AuthError(f"vSAN peer claiming host {host!r} did not prove cluster {cluster}'s key")
    send(sock, {"op": "welcome", "mac": mac(key, "server", cluster, theirs, nonce)})
    return host


def client_handshake(sock: socket.socket, key: bytes, cluster: str, host: str) -> None:
    head, _ = recv(sock)
    if head.get("op") != "challenge" or head.get("cluster") != cluster:
        raise AuthError(f"not a vSAN node of cluster {cluster}")
    nonce, theirs = os.urandom(NONCE).hex(), str(head.get("nonce", ""))[:64]
    send(sock, {"op": "auth", "host": host, "nonce": nonce,
                "mac": mac(key, "client", cluster, theirs, nonce, host)})
    head, _ = recv(sock)
    if head.get("op") != "welcome" or not hmac.compare_digest(
            str(head.get("mac", "")), mac(key, "server", cluster, nonce, theirs)):
        raise AuthError(f"the vSAN node did not prove cluster {cluster}'s key")


def seal(key: bytes, body: dict[str, Any]) -> bytes:
    raw = json.dumps(body, separators=(",", ":")).encode()
    return raw + hmac.new(key, raw, hashlib.sha256).digest()


def unseal(key: bytes, datagram: bytes) -> dict[str, Any] | None:
    """The heartbeat's body, or None: too short, too long, forged or not an object."""
    if not MAC < len(datagram) <= MAX_DATAGRAM:
        return None
    raw, tag = datagram[:-MAC], datagram[-MAC:]
    if not hmac.compare_digest(tag, hmac.new(key, raw, hashlib.sha256).digest()):
        return None
    try:
        body = json.loads(raw)
    except ValueError:
        return None
    return body if isinstance(body, dict) else None
