"""ONC RPC v2 (RFC 5531) over TCP: record marking, AUTH_SYS, XIDs, bounded replies.

One Connection carries calls of any program; calls may be pipelined
(`send` several, then `reply` each): a reply for another XID we sent is
kept until asked for, a reply for an XID we never sent ends the
connection. A reply's record is capped (`max_reply`) and each fragment's
length is checked against the cap before it is read, and every wait is
bounded by the call's deadline.
"""

from __future__ import annotations

import contextlib
import os
import socket
import struct
import time
from dataclasses import dataclass

from .errors import NfsError, NfsProtocolError, NfsTimeout
from .xdr import Packer, Unpacker

CALL, REPLY = 0, 1
MSG_ACCEPTED, MSG_DENIED = 0, 1
AUTH_NONE, AUTH_SYS = 0, 1
LAST_FRAGMENT = 0x80000000
MAX_FRAGMENT = 0x7FFFFFFF
MAX_AUTH = 400  # RFC 5531: an opaque_auth body is at most 400 bytes
DEFAULT_MAX_REPLY = (1 << 20) + 65536  # a 1 MiB READ and its headers
TIMEOUT = 10.0

ACCEPT_STAT = {1: "PROG_UNAVAIL", 2: "PROG_MISMATCH", 3: "PROC_UNAVAIL",
               4: "GARBAGE_ARGS", 5: "SYSTEM_ERR"}
AUTH_STAT = {1: "AUTH_BADCRED", 2: "AUTH_REJECTEDCRED", 3: "AUTH_BADVERF",
             4: "AUTH_REJECTEDVERF", 5: "AUTH_TOOWEAK", 6: "AUTH_INVALIDRESP", 7: "AUTH_FAILED"}


@dataclass(frozen=True, slots=True)
class AuthSys:
    """AUTH_SYS credentials: root by default, as ESXi mounts (the export does not squash)."""

    machine: str = "vmknet"
    uid: int = 0
    gid: int = 0
    gids: tuple[int, ...] = ()

    def body(self) -> bytes:
        p = Packer().u32(int(time.time()) & 0xFFFFFFFF).string(self.machine[:255])
        p.u32(self.uid).u32(self.gid).u32(len(self.gids[:16]))
        for gid in self.gids[:16]:
            p.u32(gid)
        return p.data()


def call_message(xid: int, prog: int, vers: int, proc: int, args: bytes,
                 auth: AuthSys | None) -> bytes:
    p = Packer().u32(xid).u32(CALL).u32(2).u32(prog).u32(vers).u32(proc)
    if auth is None:
        p.u32(AUTH_NONE).opaque(b"")
    else:
        p.u32(AUTH_SYS).opaque(auth.body())
    return p.u32(AUTH_NONE).opaque(b"").raw(args).data()


def record(message: bytes) -> bytes:
    """One record in one last fragment (RFC 5531 11)."""
    if len(message) > MAX_FRAGMENT:
        raise ValueError("an RPC message larger than one fragment")
    return struct.pack(">I", LAST_FRAGMENT | len(message)) + message


def parse_reply(message: bytes | bytearray | memoryview) -> tuple[int, Unpacker]:
    """(xid, the results' unpacker) of an accepted, successful reply; else NfsError."""
    u = Unpacker(message)
    xid, kind = u.u32(), u.u32()
    if kind != REPLY:
        raise NfsProtocolError(f"a message of type {kind} where a reply was expected")
    stat = u.u32()
    if stat == MSG_ACCEPTED:
        u.u32()
        u.opaque(MAX_AUTH)  # the server's verifier: AUTH_NONE for AUTH_SYS callers
        accept = u.u32()
        if accept == 0:
            return xid, u
        if accept == 2:
            low, high = u.u32(), u.u32()
            raise NfsError(f"the server speaks versions {low}..{high} of this program only",
                           code="NfsError", xid=xid)
        raise NfsError(f"the server did not accept the call: "
                       f"{ACCEPT_STAT.get(accept, str(accept))}", xid=xid)
    if stat == MSG_DENIED:
        reject = u.u32()
        if reject == 0:
            low, high = u.u32(), u.u32()
            raise NfsError(f"the server speaks RPC versions {low}..{high} only", xid=xid)
        if reject == 1:
            why = u.u32()
            raise NfsError(f"the server refused our credentials: "
                           f"{AUTH_STAT.get(why, str(why))}", xid=xid)
        raise NfsProtocolError(f"reject_stat {reject}")
    raise NfsProtocolError(f"reply_stat {stat}")


class Connection:
    """RPC calls over one connected TCP socket (the caller made and bound it)."""

    def __init__(self, sock: socket.socket, *, auth: AuthSys | None = None,
                 timeout: float = TIMEOUT, max_reply: int = DEFAULT_MAX_REPLY,
                 peer: str = "the server") -> None:
        self.sock, self.auth, self.timeout, self.max_reply = sock, auth, timeout, max_reply
        self.peer = peer
        self._xid = int.from_bytes(os.urandom(4), "big")
        self._waiting: set[int] = set()
        self._early: dict[int, bytearray] = {}
        self.broken: str | None = None  # why the connection is unusable, once it is

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.close()

    def _fail(self, why: str, kind: type[NfsError] = NfsError) -> NfsError:
        self.broken = why
        self.close()
        return kind(f"{self.peer}: {why}")

    def send(self, prog: int, vers: int, proc: int, args: bytes) -> int:
        if self.broken is not None:
            raise NfsError(f"{self.peer}: connection unusable: {self.broken}")
        self._xid = (self._xid + 1) & 0xFFFFFFFF
        xid = self._xid
        message = call_message(xid, prog, vers, proc, args, self.auth)
        try:
            self.sock.settimeout(self.timeout)
            self._send_record(message)
        except TimeoutError:
            raise self._fail(f"no progress sending within {self.timeout:g} s",
                             NfsTimeout) from None
        except OSError as err:
            raise self._fail(f"send failed: {err.strerror or type(err).__name__}") from None
        self._waiting.add(xid)
        return xid

    def _send_record(self, message: bytes) -> None:
        """The record mark and the message in one sendmsg: no copy of a 1 MiB WRITE to
        glue a 4-byte header on, and no lone 4-byte segment (TCP_NODELAY)."""
        if len(message) > MAX_FRAGMENT:
            raise ValueError("an RPC message larger than one fragment")
        parts = [memoryview(struct.pack(">I", LAST_FRAGMENT | len(message))),
                 memoryview(message)]
        while parts:
            sent = self.sock.sendmsg(parts)
            while parts and sent >= len(parts[0]):
                sent -= len(parts[0])
                parts.pop(0)
            if parts and sent:
                parts[0] = parts[0][sent:]

    def reply(self, xid: int) -> Unpacker:
        """The results of call `xid`, waiting at most the connection's timeout."""
        deadline = time.monotonic() + self.timeout
        while xid not in self._early:
            if self.broken is not None:
                raise NfsError(f"{self.peer}: connection unusable: {self.broken}")
            message = self._read_record(deadline)
            got = int.from_bytes(message[:4], "big") if len(message) >= 4 else -1
            if got not in self._waiting:
                raise self._fail(f"a reply with XID {got:#x} that was never sent",
                                 NfsProtocolError)
            self._early[got] = message
        self._waiting.discard(xid)
        _, results = parse_reply(self._early.pop(xid))
        return results

    def call(self, prog: int, vers: int, proc: int, args: bytes) -> Unpacker:
        return self.reply(self.send(prog, vers, proc, args))

    def _recv_exact(self, n: int, deadline: float) -> bytearray:
        buf = bytearray(n)
        view = memoryview(buf)
        got = 0
        while got < n:
            left = deadline - time.monotonic()
            if left <= 0:
                raise self._fail(f"no reply within {self.timeout:g} s", NfsTimeout)
            try:
                self.sock.settimeout(left)
                k = self.sock.recv_into(view[got:], n - got)
            except TimeoutError:
                raise self._fail(f"no reply within {self.timeout:g} s", NfsTimeout) from None
            except OSError as err:
                raise self._fail(f"receive failed: {err.strerror or type(err).__name__}") \
                    from None
            if not k:
                raise self._fail("the server closed the connection")
            got += k
        return buf

    def _read_record(self, deadline: float) -> bytearray:
        message = bytearray()
        while True:
            mark = int.from_bytes(self._recv_exact(4, deadline), "big")
            size = mark & MAX_FRAGMENT
            if len(message) + size > self.max_reply:
                raise self._fail(f"a reply of more than {self.max_reply} bytes "
                                 f"(fragment of {size})", NfsProtocolError)
            chunk = self._recv_exact(size, deadline)
            if not message and mark & LAST_FRAGMENT:
                return chunk  # the usual case: one fragment, no copy
            message += chunk
            if mark & LAST_FRAGMENT:
                return message
