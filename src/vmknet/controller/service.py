"""The controller (vCenter's role): CA, joins, heartbeats, tickets, over two doors.

- The management door: TLS on the controller's own address (port 443). A host
  with a certificate from the CA sends heartbeats here, one connection per
  management adapter, each bound to that adapter's address; the controller
  accepts a heartbeat only from an address that is a management adapter of
  the host the certificate names (SEC-2). A host without a certificate may
  only `join`, with a one-time token.
- The local door: a unix socket only root can open (`api.sock`), for the CLI
  on the controller's machine: host status, join tokens, tickets.

The controller talks to a host agent (tickets) over mutual TLS to the
agent's management address, checking that the peer is that host.
"""

from __future__ import annotations

import contextlib
import os
import socket
import ssl
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..errors import InvalidArgument, NotFound, VmknetError
from ..events import Event
from ..mgmt import wire
from ..mgmt.paths import MGMT_PORT
from ..mgmt.serve import Handle, accept_loop
from ..model import Datacenter, Service
from ..reach import static_v4
from ..trust import pki, tickets
from ..trust.pki import TrustError
from . import arbiter, desired, processes
from .agents import WORK_TIMEOUT as AGENT_WORK_TIMEOUT
from .agents import AgentLinks
from .changes import ABANDONED, APPLIED, RELEASED, REPORT_GRACE, Changes
from .changes import REVERTED as CHANGE_REVERTED
from .deaths import Deaths
from .door import ManagementDoor
from .hosts import CHANGING, CONFIRMED, FAILED, REVERTED, HostTable
from .joins import JoinTokens
from .snapshot import InventorySnapshot
from .tasks import Tasks

AGENT_TIMEOUT = 5.0
MAX_CSR = 8192


def management_links(dc: Datacenter, host: str) -> list[tuple[str, str]]:
    """(address, vmk) of every management adapter of `host` with a static IPv4 address."""
    h = dc.hosts.get(host)
    if h is None:
        return []
    out = []
    for vmk in sorted(h.vmknics_with(Service.MANAGEMENT)):
        v4 = static_v4(h.vmknics[vmk])
        if v4 is not None:
            out.append((str(v4.ip), vmk))
    return out


def rollback_event(host: str, report: dict[str, Any]) -> Event:
    """The NetworkRollbackEvent of one host's agent (MGMT-2)."""
    failures = report.get("failures") or []
    return Event("MGMT-2", f"hosts/{host}",
                 f"NetworkRollbackEvent: the agent of {host} could not reach the controller "
                 f"over a management adapter after change {report.get('generation')} and "
                 f"reverted it ({report.get('ops')} ops in {report.get('seconds')} s"
                 f"{f', {len(failures)} failed' if failures else ''})")


class Controller:
    def __init__(self, folder: Path, label: str, inventory: Callable[[], Datacenter],
                 port: int = MGMT_PORT,
                 record: Callable[[list[Event]], None] = lambda events: None) -> None:
        self.folder = folder
        self.inventory = inventory
        self.record = record  # events into the inventory's log (NetworkRollbackEvent)
        self.changes = Changes()
        self._links_of: Datacenter | None = None
        self._links: dict[str, list[tuple[str, str]]] = {}
        self.port = port  # of the agents
        self.ca = pki.Authority.load_or_create(folder / "ca", label)
        tls_dir = folder / "tls"
        if not (tls_dir / "cert.pem").exists():
            self.ca.issue(pki.CONTROLLER, f"controller.{label}").save(tls_dir)
        self.credential = pki.Credential.load(tls_dir)
        self._server_ctx = pki.server_context(self.credential, tls_dir)
        self._server_ctx.verify_mode = ssl.CERT_OPTIONAL  # a joining host has no cert yet
        self.agents = AgentLinks(pki.client_context(self.credential, tls_dir), port, self.links)
        self.joins = JoinTokens(folder / "join-tokens.json")
        self.hosts = HostTable()
        self.deaths = Deaths(lambda events: self.record(events))  # `record` may be set later
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        # Methods of the local door served by layers above this one (the inventory's writes).
        self.local_extra: dict[str, wire.Handler] = {}
        self.tasks: Tasks | None = None  # the multi-host operations it runs (`__main__` sets)
        self._door: ManagementDoor | None = None

    # -- the management door -----------------------------------------------------------

    def serve_management(self, listener: socket.socket) -> None:
        self._door = ManagementDoor(
            listener, self._server_ctx, self._joining, self._host_methods,
            join_limit=MAX_CSR * 2, limit=64 * 1024, timeout=AGENT_TIMEOUT,
            idle=3 * AGENT_TIMEOUT)
        self._door.start()

    def _accept_loop(self, listener: socket.socket, handle: Handle) -> None:
        accept_loop(listener, self._stop, lambda conn, peer: self._guarded(handle, conn, peer),
                    self._spawn)

    def _guarded(self, handle: Callable[[socket.socket, str], None], conn: socket.socket,
                 peer: str) -> None:
        with contextlib.suppress(OSError, VmknetError, ValueError), conn:
            handle(conn, peer)

    def _joining(self, peer: str) -> dict[str, wire.Handler]:
        """What a peer without a certificate may ask: to join, once."""
        return {"join": lambda p: self.join(p, peer)}

    def _host_methods(self, host: str, peer: str) -> dict[str, wire.Handler]:
        """What a host's agent may ask, with its certificate (`pki.peer` checked its role)."""
        return {
            "heartbeat": lambda p: self.heartbeat(host, peer, p),
            "confirm": lambda p: self.changes.confirm(str(p.get("generation", "")), host),
            "rolledBack": lambda p: self._rolled_back(host, p),
            "outcome": lambda p: self.changes.outcome(str(p.get("generation", ""))),
            "desired": lambda p: desired.desired(self, host, p),  # MGMT-3: reconcile
            "reconciled": lambda p: desired.reconciled(self, host, p),
            "ha": lambda p: desired.ha(self, host, p),  # an FDM's settings and events
        }

    def join(self, params: dict[str, Any], peer: str) -> dict[str, Any]:
        def from_management(host: str) -> None:
            links = self.links(host, fresh=True)
            if peer not in {a for a, _ in links}:
                raise TrustError(f"Host {host} must join from one of its management adapters "
                                 f"({', '.join(a for a, _ in links) or 'none'}), not {peer}",
                                 code="SEC-2")

        host = self.joins.redeem(str(params.get("token", "")), from_management)
        links = self.links(host)
        csr = str(params.get("csr", "")).encode()
        cert = self.ca.sign_request(csr, host, [a for a, _ in links])
        self.hosts.joined(host)
        return {"host": host, "cert": cert.decode(), "ca": self.ca.cert_pem.decode(),
                "links": [list(x) for x in links]}

    def heartbeat(self, host: str, peer: str, params: dict[str, Any]) -> dict[str, Any]:
        links = self.links(host)
        vmk = dict(links).get(peer)
        if vmk is None:
            raise TrustError(f"Heartbeat of {host} from {peer}, which is not one of its "
                             "management adapters", code="SEC-2")
        pid = params.get("pid")
        error = params.get("error")
        self.hosts.heartbeat(host, peer, vmk, pid if isinstance(pid, int) else None,
                             str(error)[:500] if error else None)
        return {"links": [list(x) for x in links], **desired.beat(self, host, params),
                **self.deaths.beat(host, params.get("died"))}

    # -- the local door --------------------------------------------------------------------

    def serve_local(self, listener: socket.socket) -> None:
        self._spawn(self._accept_loop, listener, self._local_conn)

    def _local_conn(self, conn: socket.socket, _peer: str) -> None:
        creds = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, 12)
        uid = int.from_bytes(creds[4:8], "little")
        if uid not in (0, os.getuid()):
            return  # the file mode already keeps others out; this is the second lock
        conn.settimeout(60)
        handlers: dict[str, wire.Handler] = {
            "ping": lambda p: {"pid": os.getpid()},
            "hosts": lambda p: self.host_status(),
            "join-token": self._join_token,
            "ticket": self._ticket,
            "rollback.arm": self._arm,
            "rollback.applied": lambda p: self.changes.set_phase(str(p["generation"]), APPLIED),
            "rollback.abandon": lambda p: self.changes.set_phase(str(p["generation"]),
                                                                 ABANDONED),
            "rollback.wait": lambda p: self.changes.wait(str(p["generation"]),
                                                         min(float(p["timeout"]), 600.0)),
            "rollout.batch": self._batch,
            "rollout.revert": self._revert,
            "rollout.release": self._release,
            **processes.handlers(self),
            **arbiter.handlers(self),  # FT-2: ft.arbiter
            **self.local_extra,
        }
        while not self._stop.is_set() and wire.answer(conn, handlers):
            pass

    def host_status(self) -> list[dict[str, Any]]:
        return self.hosts.report({h: self.links(h) for h in self.inventory().hosts})

    def links(self, host: str, fresh: bool = False) -> list[tuple[str, str]]:
        """`management_links` of `host`, computed once per inventory version."""
        dc = self._view(fresh)
        if self._links_of is not dc:
            self._links_of, self._links = dc, {}
        found = self._links.get(host)
        if found is None:
            found = self._links[host] = management_links(dc, host)
        return found

    def _view(self, fresh: bool = False) -> Datacenter:
        """The inventory; `fresh`: not a cached view older than now (joins, tickets)."""
        if fresh and isinstance(self.inventory, InventorySnapshot):
            return self.inventory(fresh=True)
        return self.inventory()

    def _join_token(self, params: dict[str, Any]) -> dict[str, Any]:
        host = str(params.get("host", ""))
        if host not in self._view(fresh=True).hosts:
            raise NotFound(f"Host {host} is not in the inventory")
        return {"token": self.joins.create(host),
                "caFingerprint": pki.fingerprint(self.ca.cert_pem)}

    def _ticket(self, params: dict[str, Any]) -> dict[str, Any]:
        kind, source, target = (str(params.get(k, "")) for k in ("kind", "source", "target"))
        uses = params.get("uses", 1)
        if kind not in tickets.KINDS or not isinstance(uses, int) or not 1 <= uses <= 64:
            raise InvalidArgument("A ticket needs a known kind and 1..64 uses")
        ttl = params.get("ttl", tickets.DEFAULT_TTL)
        if not isinstance(ttl, int | float) or not 0 < ttl <= 3600:
            raise InvalidArgument("A ticket lives 0 to 3600 s")
        dc = self._view(fresh=True)
        if source not in dc.hosts or target not in dc.hosts:
            raise NotFound(f"Ticket between {source} and {target}: not both in the inventory")
        key = bytes.fromhex(str(params["key"])) if params.get("key") else None
        ticket = tickets.new(kind, str(params.get("operation") or f"{kind}-op")[:64], source,
                             target, uses=uses, key=key, ttl=float(ttl))
        delivered: list[str] = []
        try:
            for host in dict.fromkeys((target, source)):
                self.call_agent(host, "ticket.put", {"ticket": ticket.to_json()})
                delivered.append(host)
        except VmknetError:
            for host in delivered:
                with contextlib.suppress(VmknetError, OSError):
                    self.call_agent(host, "ticket.drop", {"id": ticket.id})
            raise
        return {"id": ticket.id, "operation": ticket.operation}

    def _arm(self, params: dict[str, Any]) -> dict[str, Any]:
        """Arm each host's agent with the undo of its part of a change (MGMT-2)."""
        generation, timeout = str(params["generation"]), float(params["timeout"])
        undo: dict[str, list[Any]] = params["undo"]
        self.changes.arm(generation, sorted(undo))
        try:
            for host in sorted(undo):
                self.call_agent(host, "rollback.arm", {"generation": generation,
                                                       "undo": undo[host], "timeout": timeout})
        except VmknetError:
            self.changes.set_phase(generation, ABANDONED)  # the armed ones stand down
            raise
        return {"armed": sorted(undo)}

    def _batch(self, params: dict[str, Any]) -> dict[str, Any]:
        """One batch of a rollout (MGMT-3): each host's agent runs its part, then every one
        must confirm over its management network (MGMT-2). All of the batch or none of it:
        on a failure the others are reverted before this returns."""
        generation, timeout = str(params["generation"]), float(params["timeout"])
        parts: dict[str, list[Any]] = params["ops"]
        self.changes.arm(generation, sorted(parts))
        for host in parts:
            self.hosts.changed(host, generation, CHANGING)
        # `expires`: a request that reaches a hung agent late must not run then (hosts keep
        # their clocks in step, as vSphere requires).
        results = self.agents.each(list(parts), "realise", {"generation": generation,
                                                      "timeout": timeout,
                                                      "expires": time.time() + AGENT_WORK_TIMEOUT},
                             per_host={h: {"ops": parts[h]} for h in parts})
        failed = {h: r for h, r in results.items() if "error" in r}
        for host, why in failed.items():
            self.hosts.changed(host, generation, FAILED, str(why["error"]["message"]))
        if failed:
            # Revert before abandoning: an agent told "abandoned" first would drop its undo.
            self.agents.each([h for h in parts if h not in failed], "rollback.revert",
                       {"generation": generation})
            self.changes.set_phase(generation, ABANDONED)
            for host in parts:
                if host not in failed:
                    self.hosts.changed(host, generation, REVERTED,
                                       f"reverted: {', '.join(sorted(failed))} failed")
            host, why = sorted(failed.items())[0]
            raise VmknetError(str(why["error"]["message"]), code=str(why["error"]["code"]),
                              host=host, failed=sorted(failed))
        self.changes.set_phase(generation, APPLIED)
        # Tell each agent over the connection it answered on: if the word gets through after
        # the change, the management network works. An agent cut off hears nothing, asks on
        # its own until its deadline, then reverts (MGMT-2).
        told = self.agents.each(list(parts), "rollback.confirm", {"generation": generation},
                          timeout=timeout)
        for host, reply in told.items():
            if reply.get("confirmed"):
                self.changes.confirm(generation, host, hold=0)
        verdict = self.changes.wait(generation, timeout + REPORT_GRACE)
        confirmed = [h for h, s in verdict["hosts"].items() if s == "confirmed"]
        if len(confirmed) < len(parts):
            self.agents.each(confirmed, "rollback.revert", {"generation": generation})
        lost = sorted(set(parts) - set(confirmed))
        for host in parts:
            if not lost:
                self.hosts.changed(host, generation, CONFIRMED)
            elif host in lost:
                self.hosts.changed(host, generation, REVERTED,
                                   "the change cut it off from the controller (MGMT-2)")
            else:
                self.hosts.changed(host, generation, REVERTED,
                                   f"reverted: {', '.join(lost)} lost the controller")
        verdict["seconds"] = {h: r.get("seconds") for h, r in results.items()}
        return verdict

    def _release(self, params: dict[str, Any]) -> dict[str, Any]:
        """The change stands: the agents may drop its undo. Nobody waits for that."""
        self.changes.set_phase(str(params["generation"]), RELEASED)
        self._spawn(self.agents.each, list(params["hosts"]), "rollback.release",
                    {"generation": str(params["generation"])})
        return {}

    def _revert(self, params: dict[str, Any]) -> dict[str, dict[str, Any]]:
        """A later batch of the rollout failed: these hosts take their part back."""
        generation = str(params["generation"])
        self.changes.set_phase(generation, CHANGE_REVERTED)
        for host in params["hosts"]:
            self.hosts.changed(host, generation, REVERTED, "reverted: a later host failed")
        return self.agents.each(list(params["hosts"]), "rollback.revert",
                                {"generation": generation})

    def _rolled_back(self, host: str, report: dict[str, Any]) -> dict[str, Any]:
        generation = str(report.get("generation", ""))
        if not self.changes.knows(generation, host):
            return {"known": True}  # a repeat (the first reply was lost)
        waited = self.changes.waited_for(generation)
        known = self.changes.rolled_back(generation, host, report)
        if not waited:
            # Nobody waits for this change any more (it timed out, or the controller
            # restarted): the event goes to the log here, off the agent's connection. A
            # waiting realiser records it itself, inside its own store transaction.
            event = rollback_event(host, report)
            threading.Thread(target=self.record, args=([event],), daemon=True).start()
        return {"known": known}

    # -- talking to agents -------------------------------------------------------------------

    def call_agent(self, host: str, method: str, params: dict[str, Any],
                   timeout: float = AGENT_TIMEOUT) -> Any:
        """One request to `host`'s agent over mutual TLS (its kept connection)."""
        return self.agents.call(host, method, params, timeout)

    # -- life --------------------------------------------------------------------------------

    def _spawn(self, target: Callable[..., object], *args: Any) -> None:
        t = threading.Thread(target=target, args=args, daemon=True)
        t.start()
        self._threads.append(t)
        self._threads = [x for x in self._threads if x.is_alive()]

    def stop(self) -> None:
        self._stop.set()
        if self._door is not None:
            self._door.stop()  # closes the management listener too
