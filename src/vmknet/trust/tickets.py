"""Engine tickets (SEC-4): a peer is admitted only with the ticket issued for its operation.

vCenter hands hosts a one-time ticket for every vMotion, NFC copy or
replication transfer; a host accepts an engine connection only with it. Here:

- The controller makes a `Ticket` (random id and 256-bit secret, bound to one
  kind of engine, one operation, the source and target hosts, an expiry and a
  number of connections) and delivers it over the mutual-TLS management channel
  to the agents of both hosts, which put it in their host's `TicketBook` (a
  root-only folder). Keys an engine needs (vMotion's AES key) ride inside it,
  so they never cross an engine or management connection in clear.
- The connecting engine runs `present()`, the listening engine `admit()`, a
  fixed-size challenge-response before any engine byte: the secret never
  travels, each side proves it holds it (HMAC-SHA256 over both nonces, the
  ticket's id, kind and hosts), so a replayed exchange proves nothing and a
  stranger that took a port is found out by the client too. Every field read
  from the peer has a fixed size: nothing is allocated from what a peer declares.
- A use is spent atomically (flock on the ticket's file), so a ticket for n
  connections admits n and no more, across processes; an expired ticket is gone.

    ticket = tickets.new("nfc", "copy-7f3a", "esx01", "esx02")
    TicketBook(src_dir).put(ticket); TicketBook(dst_dir).put(ticket)    # the agents
    present(sock, ticket)                                                # client engine
    admission = admit(sock, TicketBook(dst_dir), "nfc", host="esx02")    # server engine
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import hmac
import json
import os
import secrets
import socket
import struct
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from ..supervise.records import write_json
from .pki import TrustError

KINDS = ("vmotion", "nfc", "replication", "ft", "vsan", "storage")
MAGIC = b"VMKT"
VERSION = 1
ID_BYTES, SECRET_BYTES, NONCE_BYTES, MAC_BYTES = 16, 32, 16, 32
HELLO = struct.Struct(f"!4sBB{ID_BYTES}s{NONCE_BYTES}s")  # magic, version, kind, id, nonce
CHALLENGE = struct.Struct(f"!B{NONCE_BYTES}s{MAC_BYTES}s")  # status, nonce, server proof
OK, REFUSED = 0, 1
HANDSHAKE_TIMEOUT = 5.0
DEFAULT_TTL = 120.0  # s: an operation starts within this or asks again
MAX_TICKET_FILE = 4096  # bytes: a ticket file larger than this is not ours


@dataclass(frozen=True, slots=True)
class Ticket:
    id: str  # hex
    secret: bytes
    kind: str
    operation: str
    source: str
    target: str
    expires: float  # time.time()
    uses: int = 1
    key: bytes | None = None  # an engine key (vMotion AES-256), only inside the ticket

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "secret": self.secret.hex(), "kind": self.kind,
                "operation": self.operation, "source": self.source, "target": self.target,
                "expires": self.expires, "uses": self.uses,
                "key": self.key.hex() if self.key is not None else None}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_json(cls, text: str | bytes) -> Ticket:
        try:
            d = json.loads(text)
            ticket = cls(str(d["id"]), bytes.fromhex(d["secret"]), str(d["kind"]),
                         str(d["operation"]), str(d["source"]), str(d["target"]),
                         float(d["expires"]), int(d["uses"]),
                         bytes.fromhex(d["key"]) if d.get("key") else None)
        except (ValueError, KeyError, TypeError) as err:
            raise TrustError(f"Malformed ticket: {err}", code="BadTicket") from err
        _check(ticket)
        return ticket

    @property
    def expired(self) -> bool:
        return time.time() >= self.expires


def _check(t: Ticket) -> None:
    if t.kind not in KINDS:
        raise TrustError(f"Unknown ticket kind {t.kind!r}", code="BadTicket")
    if len(bytes.fromhex(t.id)) != ID_BYTES or len(t.secret) != SECRET_BYTES or t.uses < 1:
        raise TrustError("Malformed ticket", code="BadTicket")


def new(kind: str, operation: str, source: str, target: str, *, uses: int = 1,
        ttl: float = DEFAULT_TTL, key: bytes | None = None) -> Ticket:
    ticket = Ticket(secrets.token_hex(ID_BYTES), secrets.token_bytes(SECRET_BYTES), kind,
                    operation, source, target, time.time() + ttl, uses, key)
    _check(ticket)
    return ticket


class TicketBook:
    """One host's tickets: `<folder>/<id>.json`, root-only, written atomically."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def _path(self, ticket_id: str) -> Path:
        if len(ticket_id) != 2 * ID_BYTES or not all(c in "0123456789abcdef" for c in ticket_id):
            raise TrustError("Malformed ticket id", code="BadTicket")
        return self.folder / f"{ticket_id}.json"  # hex only: stays inside the folder (SEC-5)

    def put(self, ticket: Ticket) -> None:
        self.folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        write_json(self._path(ticket.id), ticket.to_dict(), mode=0o600)
        self.sweep()

    def get(self, ticket_id: str) -> Ticket | None:
        """The live ticket, or None (unknown, expired: an expired one is removed)."""
        path = self._path(ticket_id)
        try:
            with path.open("rb") as f:
                raw = f.read(MAX_TICKET_FILE + 1)
        except OSError:
            return None
        if len(raw) > MAX_TICKET_FILE:
            return None
        ticket = Ticket.from_json(raw)
        if ticket.expired:
            self.discard(ticket.id)
            return None
        return ticket

    def spend(self, ticket_id: str) -> bool:
        """Use the ticket once; False when it is gone, expired or used up (atomic)."""
        path = self._path(ticket_id)
        try:
            fd = os.open(path, os.O_RDWR)
        except OSError:
            return False
        with os.fdopen(fd, "r+", encoding="utf-8") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            if not os.path.exists(path) or os.fstat(fd).st_ino != os.stat(path).st_ino:
                return False  # spent and removed by another process while we waited
            ticket = Ticket.from_json(f.read(MAX_TICKET_FILE))
            if ticket.expired:
                path.unlink()
                return False
            if ticket.uses <= 1:
                path.unlink()  # the last use: gone before the lock is released
            else:
                f.seek(0)
                f.truncate()
                f.write(replace(ticket, uses=ticket.uses - 1).to_json())
            return True

    def discard(self, ticket_id: str) -> None:
        with contextlib.suppress(OSError):
            self._path(ticket_id).unlink()

    def sweep(self) -> int:
        """Remove expired tickets; how many."""
        gone = 0
        for path in self.folder.glob("*.json"):
            try:
                if Ticket.from_json(path.read_bytes()[:MAX_TICKET_FILE]).expired:
                    path.unlink()
                    gone += 1
            except (OSError, TrustError):
                continue
        return gone


@dataclass(frozen=True, slots=True)
class Admission:
    """An admitted connection: its ticket and a key both ends derived for it."""

    ticket: Ticket
    session_key: bytes


def _proof(ticket: Ticket, side: bytes, cnonce: bytes, snonce: bytes) -> bytes:
    msg = b"\0".join([side, bytes.fromhex(ticket.id), cnonce, snonce, ticket.kind.encode(),
                      ticket.operation.encode(), ticket.source.encode(),
                      ticket.target.encode()])
    return hmac.new(ticket.secret, msg, hashlib.sha256).digest()


def _session_key(ticket: Ticket, cnonce: bytes, snonce: bytes) -> bytes:
    return hmac.new(ticket.secret, b"session\0" + cnonce + snonce, hashlib.sha256).digest()


def _recv(sock: socket.socket, n: int) -> bytes:
    buf = bytearray()
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise TrustError("The peer closed the connection during the ticket exchange",
                             code="NotAuthenticated")
        buf += chunk
    return bytes(buf)


def present(sock: socket.socket, ticket: Ticket, timeout: float = HANDSHAKE_TIMEOUT
            ) -> Admission:
    """Client side: prove the ticket, check the server proves it too; before any engine byte."""
    old = sock.gettimeout()
    sock.settimeout(timeout)
    try:
        cnonce = secrets.token_bytes(NONCE_BYTES)
        sock.sendall(HELLO.pack(MAGIC, VERSION, KINDS.index(ticket.kind),
                                bytes.fromhex(ticket.id), cnonce))
        status, snonce, server_mac = CHALLENGE.unpack(_recv(sock, CHALLENGE.size))
        if status != OK:
            raise TrustError(f"The {ticket.kind} server on {ticket.target} refused the ticket "
                             f"for {ticket.operation}", code="NotAuthenticated")
        if not hmac.compare_digest(server_mac, _proof(ticket, b"server", cnonce, snonce)):
            raise TrustError(f"The {ticket.kind} server on {ticket.target} does not hold the "
                             f"ticket for {ticket.operation}: not the right peer",
                             code="NotAuthenticated")
        sock.sendall(_proof(ticket, b"client", cnonce, snonce))
        if _recv(sock, 1) != bytes([OK]):
            raise TrustError(f"The {ticket.kind} server on {ticket.target} refused the ticket "
                             f"for {ticket.operation} (used up or expired)",
                             code="NotAuthenticated")
        return Admission(ticket, _session_key(ticket, cnonce, snonce))
    except OSError as err:
        raise TrustError(f"Ticket exchange with {ticket.target} failed: {err}",
                         code="NotAuthenticated") from err
    finally:
        with contextlib.suppress(OSError):
            sock.settimeout(old)


def admit(sock: socket.socket, book: TicketBook, kind: str, host: str,
          timeout: float = HANDSHAKE_TIMEOUT) -> Admission:
    """Server side: admit the peer only with a live ticket of `kind` whose target is `host`.

    Raises TrustError (the caller closes the socket and records the refusal);
    nothing of the engine has run yet.
    """
    old = sock.gettimeout()
    sock.settimeout(timeout)
    try:
        magic, version, kind_no, raw_id, cnonce = HELLO.unpack(_recv(sock, HELLO.size))
        if magic != MAGIC or version != VERSION:
            raise TrustError("The peer did not present a ticket", code="NoTicket")
        ticket = book.get(raw_id.hex())
        if ticket is None or kind_no >= len(KINDS) or KINDS[kind_no] != kind \
                or ticket.kind != kind or ticket.target != host:
            _refuse(sock)
            raise TrustError(f"Unknown, expired or foreign {kind} ticket", code="BadTicket")
        snonce = secrets.token_bytes(NONCE_BYTES)
        sock.sendall(CHALLENGE.pack(OK, snonce, _proof(ticket, b"server", cnonce, snonce)))
        client_mac = _recv(sock, MAC_BYTES)
        if not hmac.compare_digest(client_mac, _proof(ticket, b"client", cnonce, snonce)):
            sock.sendall(bytes([REFUSED]))
            raise TrustError(f"Wrong proof for {kind} ticket of {ticket.operation}",
                             code="BadTicket", operation=ticket.operation)
        if not book.spend(ticket.id):
            sock.sendall(bytes([REFUSED]))
            raise TrustError(f"The {kind} ticket of {ticket.operation} is used up",
                             code="TicketUsed", operation=ticket.operation)
        sock.sendall(bytes([OK]))
        return Admission(ticket, _session_key(ticket, cnonce, snonce))
    except OSError as err:
        raise TrustError(f"Ticket exchange failed: {err}", code="NoTicket") from err
    finally:
        with contextlib.suppress(OSError):
            sock.settimeout(old)


def _refuse(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.sendall(CHALLENGE.pack(REFUSED, bytes(NONCE_BYTES), bytes(MAC_BYTES)))
