"""Who issues engine tickets (SEC-4), behind one seam the engines' orchestrators call.

    issuer = issuer_for(lab)                   # the controller's, when one runs for the lab
    ticket = issuer.issue("nfc", "esx01", "esx02", uses=1)
    ... present(sock, ticket) on the source side; the target's listener admit()s it ...

`LocalIssuer` writes the ticket straight into both hosts' ticket books: the
controller uses it for its own lab, and a test without a controller may. The
management plane's issuer (`vmknet.controller.client`) instead asks the
controller, which delivers the ticket to both hosts' agents over mutual TLS.
"""

from __future__ import annotations

import secrets
from typing import Protocol

from ..lab.registry import tickets_dir
from . import tickets
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


def issuer_for(lab: str) -> Issuer:
    """The issuer an orchestrator should use for `lab`."""
    return LocalIssuer(lab)
