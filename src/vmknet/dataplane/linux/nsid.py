"""RTM_GETNSID on a plain netlink socket: which id a namespace gives another one.

A veth end reports its peer's namespace only as a netnsid local to its own
namespace (IFLA_LINK_NETNSID). `read` confirms which namespace that is with
one RTM_GETNSID (NETNSA_FD = the candidate) per candidate. This is hand-built
(one 28-byte request) because a pyroute2 round trip costs ~0.4 ms and a lab
read may ask hundreds of times; here it is a few microseconds.
"""

from __future__ import annotations

import errno
import itertools
import socket
import struct

RTM_NEWNSID = 88
RTM_GETNSID = 90
NLMSG_ERROR = 2
NLM_F_REQUEST = 1
NETNSA_NSID = 1
NETNSA_FD = 3
_HDR = struct.Struct("=IHHII")  # nlmsghdr: len, type, flags, seq, pid
_seq = itertools.count(1)


def _request(target_fd: int, seq: int) -> bytes:
    body = struct.pack("=B3x", socket.AF_UNSPEC) + struct.pack("=HHI", 8, NETNSA_FD, target_fd)
    return _HDR.pack(_HDR.size + len(body), RTM_GETNSID, NLM_F_REQUEST, seq, 0) + body


def _nsid(payload: bytes) -> int | None:
    """NETNSA_NSID from the attributes after the 4-byte rtgenmsg."""
    pos = 4
    while pos + 4 <= len(payload):
        length, kind = struct.unpack_from("=HH", payload, pos)
        if length < 4:
            break
        if kind & 0x3FFF == NETNSA_NSID:
            (value,) = struct.unpack_from("=i", payload, pos + 4)
            return value if value >= 0 else None
        pos += (length + 3) & ~3
    return None


def query(sock: socket.socket, target_fd: int) -> int | None:
    """The id the namespace of `sock` gives the namespace open at `target_fd` (None: none)."""
    seq = next(_seq)
    sock.send(_request(target_fd, seq))
    while True:
        data = sock.recv(65536)
        pos = 0
        while pos + _HDR.size <= len(data):
            length, kind, _, got_seq, _ = _HDR.unpack_from(data, pos)
            payload = data[pos + _HDR.size: pos + length]
            if got_seq == seq:
                if kind == RTM_NEWNSID:
                    return _nsid(payload)
                if kind == NLMSG_ERROR:
                    (code,) = struct.unpack_from("=i", payload)
                    raise OSError(-code or errno.EIO, "RTM_GETNSID failed")
            if length < _HDR.size:
                break
            pos += (length + 3) & ~3
