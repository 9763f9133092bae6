"""The ticket gate of every engine listener and the ticket of every engine client (SEC-4).

Listener side: `admitted(sock, lab, host, kind, service)` runs trust.tickets.admit
on a freshly accepted connection before any engine byte; a refused peer is
recorded in the lab's security log and its socket closed, so nothing of the
engine ever runs for it. Client side: `ticketed(conns, lab, kind, src, dst)`
asks the lab's issuer for one ticket that admits exactly these connections and
presents it on each, right after connect.

NFC, vMotion and the replication server share this module (NFC is the engine
the others already build on); it only composes trust.tickets, trust.issuer and
trust.audit.
"""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Sequence

from ..lab.registry import security_log
from ..traffic.sockets import Connection, close_all
from ..trust import audit
from ..trust.issuer import book, issuer_for
from ..trust.pki import TrustError
from ..trust.tickets import Admission, Ticket, admit, present


def peer_of(sock: socket.socket) -> str:
    try:
        peer = sock.getpeername()
    except OSError:
        return "unknown"
    return f"{peer[0]} port {peer[1]}"


def refuse(sock: socket.socket, lab: str, host: str, service: str, code: str,
           message: str) -> None:
    """Record a refused connection, then close it."""
    audit.record(security_log(lab), service, host, peer_of(sock), code, message)
    with contextlib.suppress(OSError):
        sock.close()


def admitted(sock: socket.socket, lab: str, host: str, kind: str,
             service: str | None = None) -> Admission | None:
    """The connection's admission, or None: refused, recorded and closed."""
    try:
        return admit(sock, book(lab, host), kind, host)
    except TrustError as err:
        refuse(sock, lab, host, service or kind, err.code, err.message)
        return None


def ticketed(conns: Sequence[Connection], lab: str, kind: str, source: str, target: str,
             key: bytes | None = None) -> Ticket:
    """One ticket for exactly these connections, presented on each; all closed on refusal.

    Each attempt (a resume reconnects) asks for its own ticket: uses = its connections,
    so a ticket never admits more than the connections it was issued for.
    """
    ticket = issuer_for(lab).issue(kind, source, target, uses=len(conns), key=key)
    try:
        for c in conns:
            present(c.sock, ticket)
    except BaseException:
        close_all(conns)
        raise
    return ticket
