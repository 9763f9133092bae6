"""ICMP echo from inside a namespace, in Python: no ping binary, no raw socket.

An ICMP datagram socket (`socket(AF_INET, SOCK_DGRAM, IPPROTO_ICMP)`) lets the
kernel fill in the identifier and checksum and hand this socket only its own
replies, so many pings can run at once in one namespace (lab check does).
The kernel allows it only to groups in `net.ipv4.ping_group_range`, which is
"1 0" (nobody) in a new namespace and covers IPv6 too; `open_echo_socket`
widens it in that namespace on first refusal (it is not a sysctl render
manages, so apply never resets it).
"""

from __future__ import annotations

import contextlib
import errno
import os
import select
import socket
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass, field

ICMP_ECHO, ICMP_ECHOREPLY = 8, 0
ICMP6_ECHO, ICMP6_ECHOREPLY = 128, 129
IP_MTU_DISCOVER, IP_PMTUDISC_DONT, IP_PMTUDISC_DO = 10, 0, 2
IPV6_MTU_DISCOVER, IPV6_PMTUDISC_DONT, IPV6_PMTUDISC_DO = 23, 0, 2
IP_RECVTTL, IP_TTL = 12, 2
IPV6_RECVHOPLIMIT, IPV6_HOPLIMIT = 51, 52
SO_BINDTODEVICE = 25
PING_GROUP_RANGE = "net/ipv4/ping_group_range"
ALL_GROUPS = "0 2147483647"  # what systemd sets on the root namespace
_HEADER = struct.Struct("!BBHHH")  # type, code, checksum, identifier, sequence


@dataclass(frozen=True, slots=True)
class Reply:
    seq: int
    nbytes: int  # ICMP bytes received: payload + 8, as ping prints them
    ttl: int | None
    rtt_ms: float
    source: str


@dataclass(slots=True)
class EchoResult:
    target: str
    size: int
    sent: int = 0
    replies: list[Reply] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)  # one per packet that could not be sent

    @property
    def received(self) -> int:
        return len(self.replies)

    @property
    def ok(self) -> bool:
        return bool(self.replies)

    @property
    def why(self) -> str:
        """One line for a failed echo: the send error, or the loss."""
        if self.errors:
            return self.errors[0]
        return "no reply" if self.sent else "nothing sent"


Report = Callable[[Reply | str], None]  # each reply, or each send error line, as it happens


def _create(family: int) -> socket.socket:
    proto = socket.IPPROTO_ICMP if family == socket.AF_INET else socket.IPPROTO_ICMPV6
    return socket.socket(family, socket.SOCK_DGRAM, proto)


def _create_here(family: int) -> socket.socket:
    try:
        return _create(family)
    except PermissionError:
        with open("/proc/sys/" + PING_GROUP_RANGE, "w") as f:  # this thread's namespace
            f.write(ALL_GROUPS)
        return _create(family)


def open_echo_socket(ns: str, family: int, source: str | None = None,
                     device: str | None = None, df: bool = False) -> socket.socket:
    """An ICMP datagram socket living in `ns`, bound to `source` / `device` if given.

    Without DF the kernel fragments an echo larger than the MTU, as vmkping
    does without -d; with DF a too large echo fails at sendto() (EMSGSIZE).
    """
    # imported here: netlink (pyroute2) costs ~150 ms that every other CLI command would pay
    from ..dataplane.linux import netns

    sock = netns.in_netns(ns, lambda: _create_here(family))
    try:
        if family == socket.AF_INET:
            sock.setsockopt(socket.IPPROTO_IP, IP_MTU_DISCOVER,
                            IP_PMTUDISC_DO if df else IP_PMTUDISC_DONT)
            sock.setsockopt(socket.IPPROTO_IP, IP_RECVTTL, 1)
        else:
            sock.setsockopt(socket.IPPROTO_IPV6, IPV6_MTU_DISCOVER,
                            IPV6_PMTUDISC_DO if df else IPV6_PMTUDISC_DONT)
            sock.setsockopt(socket.IPPROTO_IPV6, IPV6_RECVHOPLIMIT, 1)
        if device is not None:
            sock.setsockopt(socket.SOL_SOCKET, SO_BINDTODEVICE, device.encode())
        if source is not None:
            sock.bind((source, 0))
    except BaseException:
        sock.close()
        raise
    return sock


def _payload(size: int) -> bytes:
    return bytes(i & 0xFF for i in range(size))


def _hop_limit(ancdata: list[tuple[int, int, bytes]]) -> int | None:
    for level, kind, data in ancdata:
        if (level, kind) in ((socket.IPPROTO_IP, IP_TTL), (socket.IPPROTO_IPV6, IPV6_HOPLIMIT)):
            return int(struct.unpack("=i", data[:4])[0]) if len(data) >= 4 else data[0]
    return None


def send_error(err: OSError) -> str:
    """ESXi's line for a failed send: `sendto() failed (Message too long)`."""
    return f"sendto() failed ({err.strerror or os.strerror(err.errno or errno.EIO)})"


def echo(sock: socket.socket, target: str, *, size: int = 56, count: int = 1,
         timeout: float = 1.0, interval: float = 1.0, report: Report | None = None) -> EchoResult:
    """Send `count` echoes of `size` payload bytes on `sock`, `interval` apart.

    Each waits up to `timeout` for its reply; late replies to earlier ones are
    still counted. ICMP errors (unreachable) just mean no reply for that one.
    """
    family = sock.family
    request = ICMP_ECHO if family == socket.AF_INET else ICMP6_ECHO
    expect = ICMP_ECHOREPLY if family == socket.AF_INET else ICMP6_ECHOREPLY
    result = EchoResult(target, size)
    payload = _payload(size)
    sent_at: dict[int, float] = {}
    seen: set[int] = set()
    for seq in range(count):
        started = time.monotonic()
        packet = _HEADER.pack(request, 0, 0, 0, seq & 0xFFFF) + payload
        try:
            # Stamped before sendto: on a veth the reply can be queued before sendto returns.
            sent_at[seq & 0xFFFF] = time.perf_counter()
            sock.sendto(packet, (target, 0))
        except OSError as err:
            del sent_at[seq & 0xFFFF]
            line = send_error(err)
            result.errors.append(line)
            if report is not None:
                report(line)
        result.sent += 1
        last = seq == count - 1
        wait_until = started + (timeout if last else max(interval, 0.0))
        _collect(sock, expect, sent_at, seen, result, report, wait_until,
                 stop_when_answered=seq & 0xFFFF)
        if not last:  # keep the interval even when the reply came early
            time.sleep(max(0.0, started + interval - time.monotonic()))
    return result


def _collect(sock: socket.socket, expect: int, sent_at: dict[int, float], seen: set[int],
             result: EchoResult, report: Report | None, wait_until: float,
             stop_when_answered: int) -> None:
    while True:
        if stop_when_answered in seen or stop_when_answered not in sent_at:
            return
        left = wait_until - time.monotonic()
        if left <= 0:
            return
        ready, _, _ = select.select([sock], [], [], left)
        if not ready:
            return
        try:
            data, anc, _, peer = sock.recvmsg(65535, socket.CMSG_SPACE(4) * 2)
        except OSError:
            continue  # an ICMP error for one of ours: that echo stays unanswered
        now = time.perf_counter()
        if len(data) < _HEADER.size:
            continue
        kind, _, _, _, seq = _HEADER.unpack_from(data)
        if kind != expect or seq not in sent_at or seq in seen:
            continue
        seen.add(seq)
        reply = Reply(seq, len(data), _hop_limit(anc), (now - sent_at[seq]) * 1000, str(peer[0]))
        result.replies.append(reply)
        if report is not None:
            report(reply)


def ping_once(ns: str, target: str, *, source: str | None = None, device: str | None = None,
              size: int = 56, df: bool = False, timeout: float = 1.0) -> EchoResult:
    """One echo from namespace `ns` (what lab check runs many of at once)."""
    family = socket.AF_INET6 if ":" in target else socket.AF_INET
    try:
        sock = open_echo_socket(ns, family, source, device, df)
    except OSError as err:
        return EchoResult(target, size, errors=[f"socket: {err.strerror or err}"])
    with contextlib.closing(sock):
        return echo(sock, target, size=size, timeout=timeout)
