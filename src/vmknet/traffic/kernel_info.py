"""What one namespace's kernel holds: sockets, routes, neighbours, link state and counters.

Read-only and cheap: /proc/thread-self/net/{tcp,tcp6,udp,udp6} are read by a
thread inside the namespace (/proc/net would show the main thread's); routes,
neighbours and links come from one rtnetlink dump each on a socket made
inside the namespace (`rtdump.dump`), no pyroute2 decoding.
"""

from __future__ import annotations

import contextlib
import os
import socket
import struct
import sys
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv6Address, ip_address

from ..dataplane.linux import netns
from ..dataplane.linux.rtdump import RTM_GETLINK, RTM_GETROUTE, Dumper, attrs, dump

RTM_GETNEIGH = 30
RT_TABLE_MAIN = 254
RTN_UNICAST = 1
_IFINFO = struct.Struct("=BxHiII")
_RTMSG = struct.Struct("=BBBBBBBBI")
_NDMSG = struct.Struct("=BxxxiHBB")  # family, ifindex, state, flags, type
_STATS64 = struct.Struct("=QQQQQQQQ")  # rx/tx packets, rx/tx bytes, rx/tx errors, drops
IFF_UP, IFF_LOWER_UP = 0x1, 0x10000

TCP_STATES = {
    1: "ESTABLISHED", 2: "SYN_SENT", 3: "SYN_RECV", 4: "FIN_WAIT_1", 5: "FIN_WAIT_2",
    6: "TIME_WAIT", 7: "CLOSE", 8: "CLOSE_WAIT", 9: "LAST_ACK", 10: "LISTEN", 11: "CLOSING",
    12: "NEW_SYN_RECV",
}
NUD_STATES = {0x01: "Incomplete", 0x02: "Reachable", 0x04: "Stale", 0x08: "Delay",
              0x10: "Probe", 0x20: "Failed", 0x40: "Noarp", 0x80: "Permanent"}


# ------------------------------------------------------------- /proc/net sockets


@dataclass(frozen=True, slots=True)
class SockEntry:
    proto: str  # tcp, tcp6, udp, udp6
    local: tuple[str, int]
    remote: tuple[str, int]
    state: str
    recv_q: int
    send_q: int
    inode: int


def _hex_address(text: str) -> tuple[str, int]:
    """`0B1212C6:1F40` -> ("198.18.18.11", 8000): the kernel prints words in host order."""
    addr_hex, port_hex = text.split(":")
    raw = bytes.fromhex(addr_hex)
    if sys.byteorder == "little":  # each 32-bit word was printed as a host-order integer
        raw = b"".join(raw[i:i + 4][::-1] for i in range(0, len(raw), 4))
    addr = ip_address(raw)
    return _plain(addr), int(port_hex, 16)


def _plain(addr: IPv4Address | IPv6Address) -> str:
    """IPv4-mapped IPv6 (a v6 socket talking v4) is shown as the IPv4 address."""
    if isinstance(addr, IPv6Address) and addr.ipv4_mapped is not None:
        return str(addr.ipv4_mapped)
    return str(addr)


def parse_proc_net(proto: str, text: str) -> list[SockEntry]:
    """Rows of /proc/net/tcp, tcp6, udp or udp6."""
    out = []
    for line in text.splitlines()[1:]:
        f = line.split()
        if len(f) < 10:
            continue
        tx_q, rx_q = (int(x, 16) for x in f[4].split(":"))
        state_code = int(f[3], 16)
        # UDP has no connection state (ESXi leaves the column empty).
        state = TCP_STATES.get(state_code, str(state_code)) if proto.startswith("tcp") else ""
        out.append(SockEntry(proto, _hex_address(f[1]), _hex_address(f[2]), state, rx_q, tx_q,
                             int(f[9])))
    return out


def _read_proc_here() -> dict[str, str]:
    out = {}
    for proto in ("tcp", "tcp6", "udp", "udp6"):
        # /proc/net is /proc/self/net: the main thread's namespace; thread-self is ours.
        with contextlib.suppress(FileNotFoundError), open(f"/proc/thread-self/net/{proto}") as f:
            out[proto] = f.read()
    return out


def connections(ns: str) -> list[SockEntry]:
    """Every TCP and UDP socket of the namespace."""
    texts = netns.in_netns(ns, _read_proc_here)
    return [e for proto, text in texts.items() for e in parse_proc_net(proto, text)]


def socket_owners() -> dict[int, tuple[int, str]]:
    """inode -> (pid, command) for sockets of processes we can see (ESXi's World ID/Name)."""
    out: dict[int, tuple[int, str]] = {}
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/comm") as f:
                comm = f.read().strip()
            fds = os.listdir(f"/proc/{pid}/fd")
        except OSError:
            continue
        for fd in fds:
            with contextlib.suppress(OSError):
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
                if target.startswith("socket:["):
                    out.setdefault(int(target[8:-1]), (int(pid), comm))
    return out


# --------------------------------------------------------------- rtnetlink reads


@dataclass(frozen=True, slots=True)
class LinkInfo:
    index: int
    name: str
    admin_up: bool
    carrier: bool  # IFF_LOWER_UP: the peer end is up (a veth's "cable")
    mtu: int
    mac: str | None
    rx_packets: int
    tx_packets: int
    rx_bytes: int
    tx_bytes: int


@dataclass(frozen=True, slots=True)
class RouteInfo:
    family: int
    dst: str | None
    dst_len: int
    gateway: str | None
    oif: int | None
    prefsrc: str | None
    proto: int


@dataclass(frozen=True, slots=True)
class NeighInfo:
    family: int
    address: str
    mac: str | None
    ifindex: int
    state: str
    updated_s: int | None  # seconds since the entry was last updated


def _socket(ns: str) -> socket.socket:
    return socket.socket(fileno=netns.netlink_fd(ns))


def _u32(a: dict[int, bytes], k: int) -> int | None:
    return struct.unpack("=I", a[k][:4])[0] if k in a else None


def _mac(raw: bytes | None) -> str | None:
    return ":".join(f"{b:02x}" for b in raw) if raw else None


def links(ns: str) -> list[LinkInfo]:
    out = []
    with _socket(ns) as sock:
        for p, _ in dump(sock, RTM_GETLINK, _IFINFO.pack(0, 0, 0, 0, 0)):
            _, _, index, flags, _ = _IFINFO.unpack_from(p)
            a = attrs(p, _IFINFO.size)
            s = _STATS64.unpack_from(a[23]) if 23 in a else (0,) * 8  # IFLA_STATS64
            out.append(LinkInfo(index, a.get(3, b"").split(b"\0", 1)[0].decode(),
                                bool(flags & IFF_UP), bool(flags & IFF_LOWER_UP),
                                _u32(a, 4) or 0, _mac(a.get(1)), s[0], s[1], s[2], s[3]))
    return out


def addresses(ns: str) -> dict[int, set[str]]:
    """ifindex -> the addresses the interface holds (both families), as `ip addr` lists."""
    dumper = Dumper(netns.netlink_fd(ns))
    try:
        out: dict[int, set[str]] = {}
        for a in dumper.addrs():
            out.setdefault(a.index, set()).add(a.address)
        return out
    finally:
        dumper.close()


def routes(ns: str, family: int = socket.AF_INET, table: int = RT_TABLE_MAIN) -> list[RouteInfo]:
    """Unicast routes of one table (main by default), as `ip route show table N` lists them."""
    out = []
    with _socket(ns) as sock:
        for p, _ in dump(sock, RTM_GETROUTE, _RTMSG.pack(family, 0, 0, 0, 0, 0, 0, 0, 0)):
            fam, dst_len, _, _, tbl, proto, _, rtype, _ = _RTMSG.unpack_from(p)
            a = attrs(p, _RTMSG.size)
            if (_u32(a, 15) or tbl) != table or rtype != RTN_UNICAST:
                continue
            out.append(RouteInfo(fam, _ip(fam, a.get(1)), dst_len, _ip(fam, a.get(5)),
                                 _u32(a, 4), _ip(fam, a.get(7)), proto))
    return out


def neighbours(ns: str) -> list[NeighInfo]:
    out = []
    with _socket(ns) as sock:
        for family in (socket.AF_INET, socket.AF_INET6):
            for p, _ in dump(sock, RTM_GETNEIGH, _NDMSG.pack(family, 0, 0, 0, 0)):
                fam, index, state, _, _ = _NDMSG.unpack_from(p)
                a = attrs(p, _NDMSG.size)
                dst = _ip(fam, a.get(1))
                if dst is None or state == 0x40:  # NOARP: multicast/loopback, not neighbours
                    continue
                updated = None
                if 3 in a and len(a[3]) >= 12:  # NDA_CACHEINFO: confirmed, used, updated (ticks)
                    updated = struct.unpack_from("=III", a[3])[2] // 100
                out.append(NeighInfo(fam, dst, _mac(a.get(2)), index,
                                     _nud(state), updated))
    return out


def _nud(state: int) -> str:
    names = [name for bit, name in NUD_STATES.items() if state & bit]
    return "/".join(names) if names else "None"


def _ip(family: int, raw: bytes | None) -> str | None:
    return socket.inet_ntop(family, raw) if raw else None

