"""The host agent (hostd/vpxa's role): joins, heartbeats, and serves the controller.

It runs inside its host's management TCP/IP stack (the lab starts it in that
stack's namespace; on a real host it is the default stack), and:

- joins once: a fresh key and CSR, the one-time token, the controller checked
  against the token's CA fingerprint; the certificate comes back with the
  host's management addresses as SANs, chosen by the controller;
- heartbeats every second on each management adapter: one TLS connection per
  adapter, bound to that adapter's address so it leaves by it (each adapter is
  its own link, as vSphere HA counts them); the controller answers with the
  current management adapters, and the agent follows: it listens on exactly
  those addresses (SEC-2), never on a wildcard;
- serves the controller over mutual TLS on port 443 of those addresses,
  accepting only the controller's certificate: tickets for the host's engines
  go into its ticket book (SEC-4);
- in a lab, reconciles its host with the controller's desired state
  (`reconcile.py`, MGMT-3): at start, when the heartbeat reply names a new
  generation, and every 30 s, never while a rollout's change is in flight.
"""

from __future__ import annotations

import contextlib
import os
import socket
import ssl
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..dataplane.linux import LinuxBackend
from ..errors import VmknetError
from ..mgmt import wire
from ..mgmt.paths import MGMT_PORT
from ..mgmt.serve import accept_loop
from ..trust import pki, tickets
from ..trust.pki import Credential, TrustError
from ..trust.tickets import TicketBook
from . import faults, fdm_host, processes
from .reconcile import Reconciler
from .rollback import RollbackGuard, RolledBack

HEARTBEAT = 1.0  # s, as vSphere HA's network heartbeats
TIMEOUT = 5.0
CONTROLLER_IDLE = 60.0  # s a controller's kept connection may sit idle before it is closed
MAX_REQUEST = wire.MAX_FRAME  # a host's part of a change can be thousands of ops


@dataclass(frozen=True)
class ControllerAddress:
    host: str
    port: int = MGMT_PORT

    @classmethod
    def parse(cls, text: str) -> ControllerAddress:
        host, _, port = text.rpartition(":") if text.count(":") == 1 else (text, "", "")
        return cls(host, int(port)) if port else cls(text)


class Agent:
    def __init__(self, host: str, folder: Path, controller: ControllerAddress,
                 book: TicketBook, port: int = MGMT_PORT, lab: str = "") -> None:
        self.host, self.folder, self.controller = host, folder, controller
        self.book, self.port = book, port
        self.guard = RollbackGuard(lab, host, self.confirm, self.report,
                                   faults.backend(LinuxBackend), folder / "armed", self.outcome)
        # One writer of the host's kernel at a time: a rollout's steps or a reconcile pass.
        self.kernel = threading.Lock()
        self.reconciler = Reconciler(lab, host, self.guard, self.kernel, self._desired,
                                     self._reconciled, LinuxBackend, lambda: list(self.links))
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._listeners: dict[str, socket.socket] = {}
        self._beating: dict[str, threading.Thread] = {}
        self.links: list[tuple[str, str]] = []  # (address, vmk) as the controller said
        self.error: str | None = None
        self._died_acked = 0.0  # the newest process death the controller has recorded

    # -- join ---------------------------------------------------------------------------

    @property
    def joined(self) -> bool:
        return (self.folder / "cert.pem").exists()

    def join(self, token: str, ca_fingerprint: str, source: str | None = None
             ) -> list[tuple[str, str]]:
        """Join; the management links (address, vmk) the controller knows for this host."""
        key, csr = pki.request(self.host)
        with self._connect_raw(source) as raw, \
                pki.pinned_client_context(ca_fingerprint).wrap_socket(raw) as tls:
            reply = wire.call(tls, "join", {"token": token, "csr": csr.decode()})
            ca = str(reply["ca"]).encode()
            pki.check_pinned(tls, ca, ca_fingerprint)
        Credential(str(reply["cert"]).encode(), key, ca).save(self.folder)
        return [(str(a), str(v)) for a, v in reply.get("links", [])]

    def _connect_raw(self, source: str | None, timeout: float = TIMEOUT) -> socket.socket:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            sock.settimeout(timeout)
            if source:
                sock.bind((source, 0))  # leave by that adapter (its policy rule)
            sock.connect((self.controller.host, self.controller.port))
            sock.settimeout(TIMEOUT)  # a short connect timeout, the usual one for the reply
        except BaseException:
            sock.close()
            raise
        return sock

    # -- run ----------------------------------------------------------------------------

    def start(self, first_links: list[tuple[str, str]]) -> None:
        cred = Credential.load(self.folder)
        self._server_ctx = pki.server_context(cred, self.folder)
        self._client_ctx = pki.client_context(cred, self.folder)
        self.follow(first_links)
        self.guard.resume()  # a change armed before a crash is still watched (MGMT-2)
        if self.guard.lab:  # a host outside a lab has no rendered desired state to follow
            self.reconciler.start()
        fdm_host.start(self)  # vSphere HA: idle unless the host is in an HA cluster

    def follow(self, links: list[tuple[str, str]]) -> None:
        """Listen and heartbeat on exactly these management addresses."""
        with self._lock:
            self.links = links
            wanted = {a for a, _ in links}
            for address in set(self._listeners) - wanted:
                with contextlib.suppress(OSError):
                    self._listeners.pop(address).close()
            for address in wanted - set(self._listeners):
                try:
                    sock = socket.create_server((address, self.port), backlog=16)
                except OSError as err:
                    self.error = f"cannot listen on {address}:{self.port}: {err.strerror}"
                    continue
                self._listeners[address] = sock
                self._spawn(self._accept_loop, sock)
            for address in wanted:
                beat = self._beating.get(address)
                if beat is None or not beat.is_alive():
                    self._beating[address] = self._spawn(self._heartbeat_loop, address)

    def _heartbeat_loop(self, address: str) -> None:
        while not self._stop.is_set() and address in {a for a, _ in self.links}:
            try:
                with self._connect_raw(address) as raw, \
                        self._client_ctx.wrap_socket(raw) as tls:
                    pki.peer(tls, pki.CONTROLLER)
                    while not self._stop.is_set() and address in {a for a, _ in self.links}:
                        self._send_reports(tls)
                        beat: dict[str, Any] = {"pid": os.getpid(), "error": self.error,
                                                "realised": self.reconciler.realised}
                        if self.reconciler.error:  # absent: none (a heartbeat stays small)
                            beat["reconcileError"] = self.reconciler.error
                        died = processes.deaths_since(self, self._died_acked)
                        if died:  # until the controller echoes the newest, as an event
                            beat["died"] = died
                        reply = wire.call(tls, "heartbeat", beat)
                        acked = reply.get("diedAcked")
                        if isinstance(acked, (int, float)):
                            self._died_acked = max(self._died_acked, float(acked))
                        self._prefetch(tls, reply.get("generation"))
                        links = [(str(a), str(v)) for a, v in reply.get("links", [])]
                        if links != self.links:
                            self._spawn(self.follow, links)
                        self._stop.wait(HEARTBEAT)
            except (OSError, VmknetError, ValueError, TypeError):
                self._stop.wait(HEARTBEAT)  # the controller is away: keep trying

    def _prefetch(self, tls: ssl.SSLSocket, generation: object) -> None:
        """A new generation: fetch the host's desired state on this heartbeat connection
        (saves the pass a TLS handshake) and hand it to the reconcile loop."""
        ask = self.reconciler.heard(generation)
        if ask is None:
            return
        reply: Any = None
        try:
            if self.guard.lab:
                reply = wire.call(tls, "desired", {"lab": self.guard.lab, **ask})
        finally:
            self.reconciler.offer(reply if isinstance(reply, dict) else None)

    def _send_reports(self, tls: ssl.SSLSocket) -> None:
        reports = self.guard.take_reports()
        try:
            for report in reports:
                wire.call(tls, "rolledBack", report.to_dict())
                reports = reports[1:]
        finally:
            self.guard.give_back(reports)

    def confirm(self, generation: str, within: float = TIMEOUT) -> str:
        """Ask the controller, over a new connection from a management adapter, whether the
        change `generation` stands (MGMT-2); raises when no adapter reaches it."""
        return str(self._fresh_call("confirm", {"generation": generation}, within))

    def outcome(self, generation: str) -> str:
        """Whether the rollout of a confirmed part stood (released) or was taken back."""
        return str(self._fresh_call("outcome", {"generation": generation}, TIMEOUT))

    def report(self, done: RolledBack) -> None:
        self._fresh_call("rolledBack", done.to_dict(), TIMEOUT)

    def _desired(self, have: str | None) -> dict[str, Any]:
        reply = self._fresh_call("desired", {"lab": self.guard.lab, "have": have}, TIMEOUT)
        if not isinstance(reply, dict):
            raise VmknetError("The controller's desired state is not an object",
                              code="ProtocolError")
        return reply

    def _reconciled(self, report: dict[str, Any]) -> None:
        self._fresh_call("reconciled", report, TIMEOUT)

    def _fresh_call(self, method: str, params: dict[str, Any], within: float) -> Any:
        last: Exception | None = None
        for address, _vmk in list(self.links):
            try:
                with self._connect_raw(address, min(within, 1.0)) as raw, \
                        self._client_ctx.wrap_socket(raw) as tls:
                    pki.peer(tls, pki.CONTROLLER)
                    return wire.call(tls, method, params)
            except (OSError, VmknetError) as err:
                last = err
        raise VmknetError(f"No management adapter reaches the controller: {last}",
                          code="HostNotConnected")

    def _accept_loop(self, listener: socket.socket) -> None:
        accept_loop(listener, self._stop, self._serve, self._spawn)

    def _serve(self, conn: socket.socket, _peer: str = "") -> None:
        with contextlib.suppress(OSError, VmknetError, ssl.SSLError), conn:
            conn.settimeout(TIMEOUT)
            with self._server_ctx.wrap_socket(conn, server_side=True) as tls:
                pki.peer(tls, pki.CONTROLLER)
                tls.settimeout(CONTROLLER_IDLE)  # the controller keeps it for its next call
                while wire.answer(tls, self.handlers(), limit=MAX_REQUEST):
                    pass

    def handlers(self) -> dict[str, wire.Handler]:
        return {"ping": lambda p: {"host": self.host, "pid": os.getpid()},
                "ticket.put": self._ticket_put,
                "rollback.arm": self._locked(self.guard.arm),
                "realise": self._locked(self.guard.realise),
                "rollback.revert": self._locked(self.guard.revert),
                "rollback.confirm": self.guard.confirmed,
                "rollback.release": self.guard.release,
                "ticket.drop": self._ticket_drop,
                **processes.handlers(self)}

    def _locked(self, handler: wire.Handler) -> wire.Handler:
        """`handler`, run while no reconcile pass writes to the kernel."""
        def run(params: dict[str, Any]) -> Any:
            with self.kernel:
                return handler(params)
        return run

    def _ticket_put(self, params: dict[str, Any]) -> dict[str, Any]:
        ticket = tickets.Ticket.from_json(str(params.get("ticket", "")))
        if self.host not in (ticket.source, ticket.target):
            raise TrustError(f"Ticket for {ticket.source} -> {ticket.target}, not for "
                             f"{self.host}", code="BadTicket")
        self.book.put(ticket)
        return {"id": ticket.id}

    def _ticket_drop(self, params: dict[str, Any]) -> dict[str, Any]:
        self.book.discard(str(params.get("id", "")))
        return {}

    def _spawn(self, target: Callable[..., Any], *args: Any) -> threading.Thread:
        t = threading.Thread(target=target, args=args, daemon=True)
        t.start()
        return t

    def stop(self) -> None:
        self._stop.set()
        self.reconciler.stop()
        fdm_host.stop(self)
        self.guard.stop()
        with self._lock:
            for sock in self._listeners.values():
                with contextlib.suppress(OSError):
                    sock.close()
            self._listeners.clear()

