"""ICMP echo from inside a namespace: how the controller checks the management adapters (REQ-5).

The raw socket is created inside the namespace by `in_netns` and used from
the caller's thread (a socket keeps its namespace for life, LAB.md), so no
`ip netns exec ping` process is forked per target and every target is
probed in parallel: one request per target per round, replies matched by
identifier and source address.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import select
import socket
import struct
import time
from collections.abc import Iterable

from ..dataplane.linux.netns import in_netns

ECHO_REQUEST, ECHO_REPLY = 8, 0
ROUND_SECONDS = 0.2  # resend to the silent targets this often
_ident = itertools.count((os.getpid() * 7919) & 0xFFFF)


def _checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total: int = sum(struct.unpack(f"!{len(data) // 2}H", data))
    total = (total >> 16) + (total & 0xFFFF)
    total += total >> 16
    return ~total & 0xFFFF


def _request(ident: int, seq: int) -> bytes:
    payload = b"vmknet-req5"
    header = struct.pack("!BBHHH", ECHO_REQUEST, 0, 0, ident, seq)
    return struct.pack("!BBHHH", ECHO_REQUEST, 0, _checksum(header + payload), ident,
                       seq) + payload


def _raw_icmp() -> socket.socket:
    return socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)


def echo(ns: str, targets: Iterable[str], timeout: float) -> dict[str, float | None]:
    """Round-trip seconds per IPv4 target from namespace `ns`; None: no reply within `timeout`."""
    pending = {t: 0.0 for t in targets}
    answered: dict[str, float | None] = {}
    if not pending:
        return answered
    ident = next(_ident) & 0xFFFF
    deadline = time.monotonic() + timeout
    with in_netns(ns, _raw_icmp) as sock:
        sock.setblocking(False)
        for seq in itertools.count(1):
            now = time.monotonic()
            for target in pending:
                pending[target] = now
                # No route yet (an address being added): the next round retries.
                with contextlib.suppress(OSError):
                    sock.sendto(_request(ident, seq & 0xFFFF), (target, 0))
            round_end = min(now + ROUND_SECONDS, deadline)
            while pending and (left := round_end - time.monotonic()) > 0:
                if not select.select([sock], [], [], left)[0]:
                    break
                data, (source, _) = sock.recvfrom(2048)
                start = (data[0] & 0x0F) * 4  # raw IPv4 sockets see the IP header
                kind, _, _, rid, _ = struct.unpack_from("!BBHHH", data, start)
                if kind == ECHO_REPLY and rid == ident and source in pending:
                    answered[source] = time.monotonic() - pending.pop(source)
            if not pending or time.monotonic() >= deadline:
                break
    return answered | {t: None for t in pending}
