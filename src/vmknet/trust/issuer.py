"""Who issues engine tickets (SEC-4), behind one seam the engines' orchestrators call.

    issuer = issuer_for(lab)                   # the controller's, when one runs for the lab
    ticket = issuer.issue("nfc", "esx01", "esx02", uses=1)
    ... present(sock, ticket) on the source side; the target's listener admit()s it ...

`ControllerIssuer` asks the lab's controller (its local `api.sock`), which
makes the ticket and delivers it to both hosts' agents over mutual TLS; the
agents put it in their books, and the source side reads its copy from its own
host's book: the secret and any key never cross the CLI's socket. A lab
without a controller (no `physical.controller`) has no management plane, and
`LocalIssuer` writes the ticket straight into both hosts' books.
"""

from __future__ import annotations

import secrets
from typing import Protocol

from ..lab.registry import tickets_dir
from ..mgmt.paths import api_socket
from . import tickets
from .pki import TrustError
from .tickets import Ticket, TicketBook


class Issuer(Protocol):
    def issue(self, kind: str, source: str, target: str, *, uses: int = 1,
              key: bytes | None = None, ttl: float = tickets.DEFAULT_TTL) -> Ticket: ...


def book(lab: str, host: str) -> TicketBook:
    return TicketBook(tickets_dir(lab, host))


def operation_id(kind: str) -> str:
    return f"{kind}-{secrets.token_hex(6)}"


class LocalIssuer:
    """Issues into the books of a lab on this machine."""

    def __init__(self, lab: str) -> None:
        self.lab = lab

    def issue(self, kind: str, source: str, target: str, *, uses: int = 1,
              key: bytes | None = None, ttl: float = tickets.DEFAULT_TTL) -> Ticket:
        ticket = tickets.new(kind, operation_id(kind), source, target, uses=uses, ttl=ttl,
                             key=key)
        book(self.lab, target).put(ticket)
        book(self.lab, source).put(ticket)
        return ticket


class ControllerIssuer:
    """Issues through the controller and the two hosts' agents (SEC-4)."""

    def __init__(self, lab: str) -> None:
        self.lab = lab

    def issue(self, kind: str, source: str, target: str, *, uses: int = 1,
              key: bytes | None = None, ttl: float = tickets.DEFAULT_TTL) -> Ticket:
        from ..controller.client import ControllerClient  # the controller imports trust

        got = ControllerClient(self.lab).call("ticket", {
            "kind": kind, "operation": operation_id(kind), "source": source,
            "target": target, "uses": uses, "key": key.hex() if key else None, "ttl": ttl})
        ticket = book(self.lab, source).get(str(got["id"]))
        if ticket is None:
            raise TrustError(f"The agent of {source} did not store ticket {got['id']}",
                             code="BadTicket")
        return ticket


def issuer_for(lab: str) -> Issuer:
    """The controller's issuer when the lab has a controller, else the local one."""
    return ControllerIssuer(lab) if api_socket(lab).exists() else LocalIssuer(lab)
