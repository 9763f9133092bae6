"""What the controller knows of each host: joined or not, heartbeats per link, condition.

Conditions in the manner of kubernetes-nmstate's enactments:
Available (every management link heartbeats), Degraded (some links are
silent, the host is still reached), Failing (no heartbeat for
`LOST_AFTER` seconds, or the agent reported an error), Progressing (joined,
no heartbeat yet, or a change is being rolled out to it). A failed reconcile
of its agent (MGMT-3) makes it Failing too; desired and realised generation
say whether the agent has converged to the committed inventory. How the host's last
change ended (confirmed, failed, reverted, and why) is reported beside the
condition: a reverted change leaves a healthy host.

On an etcd store the table also reads each host's lease (`liveness`, leases.py):
a host whose alive key etcd holds is connected, even before its first heartbeat
reaches this controller (a newly elected one), and Available until its links
say otherwise.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .leases import HostLeases

# The last change of a host: being applied, confirmed, failed on it, reverted (MGMT-2/3).
CHANGING, CONFIRMED, FAILED, REVERTED = "progressing", "confirmed", "failed", "reverted"
LOST_AFTER = 3.0  # s without a heartbeat on a link: that link is silent (heartbeats are 1 s)
AVAILABLE, DEGRADED, FAILING, PROGRESSING, NOT_JOINED = (
    "Available", "Degraded", "Failing", "Progressing", "NotJoined")


@dataclass
class Link:
    address: str  # the management adapter address the heartbeat came from
    vmk: str
    last: float = 0.0  # time.time() of its last heartbeat


@dataclass
class HostRecord:
    name: str
    joined: float | None = None
    links: dict[str, Link] = field(default_factory=dict)  # by source address
    agent_pid: int | None = None
    error: str | None = None
    change: dict[str, Any] | None = None  # the last change rolled out to it: generation, state
    # Its agent's reconcile (MGMT-3): the generation the controller last told it to realise,
    # the one it last converged to, and why its last reconcile failed (None: it did not).
    desired: int | None = None
    realised: int | None = None
    reconcile_error: str | None = None

    def condition(self, expected: list[tuple[str, str]], now: float,
                  leased: bool = False) -> str:
        if self.joined is None and not leased:
            return NOT_JOINED
        state = (self.change or {}).get("state")
        if state == CHANGING:
            return PROGRESSING
        if self.error or self.reconcile_error:
            return FAILING
        live = [a for a, _ in expected if now - self.links.get(a, Link(a, "")).last < LOST_AFTER]
        if not self.links:
            return AVAILABLE if leased else PROGRESSING
        if not live:
            return FAILING
        return AVAILABLE if len(live) == len(expected) else DEGRADED


class HostTable:
    """Thread-safe: heartbeat threads write, the API reads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._hosts: dict[str, HostRecord] = {}
        self.liveness: HostLeases | None = None  # the agents' leases, on an etcd store

    def joined(self, host: str) -> None:
        with self._lock:
            self._hosts.setdefault(host, HostRecord(host)).joined = time.time()

    def heartbeat(self, host: str, address: str, vmk: str, pid: int | None,
                  error: str | None) -> None:
        with self._lock:
            rec = self._hosts.setdefault(host, HostRecord(host))
            if rec.joined is None:
                rec.joined = time.time()  # a host that joined before a controller restart
            link = rec.links.setdefault(address, Link(address, vmk))
            link.vmk, link.last = vmk, time.time()
            rec.agent_pid, rec.error = pid, error
        if self.liveness is not None:
            self.liveness.seen(host)

    def reconcile(self, host: str, desired: int, realised: int | None,
                  error: str | None) -> None:
        with self._lock:
            rec = self._hosts.setdefault(host, HostRecord(host))
            rec.desired, rec.realised, rec.reconcile_error = desired, realised, error

    def changed(self, host: str, generation: str, state: str, error: str | None = None) -> None:
        with self._lock:
            rec = self._hosts.setdefault(host, HostRecord(host))
            rec.change = {"generation": generation, "state": state, "time": time.time(),
                          "error": error}

    def report(self, expected: dict[str, list[tuple[str, str]]]) -> list[dict[str, Any]]:
        """One row per host of the inventory (`expected`: host -> [(address, vmk)])."""
        now = time.time()
        leased = self.liveness.alive() if self.liveness is not None else frozenset()
        rows = []
        with self._lock:
            for host in sorted(expected):
                rec = self._hosts.get(host, HostRecord(host))
                last = max((lk.last for lk in rec.links.values()), default=None)
                rows.append({
                    "host": host,
                    "condition": rec.condition(expected[host], now, host in leased),
                    "connected": ((last is not None and now - last < LOST_AFTER)
                                  or host in leased),
                    "lastHeartbeat": last,
                    "links": [{"vmk": vmk, "address": addr,
                               "lastHeartbeat": rec.links[addr].last if addr in rec.links
                               else None}
                              for addr, vmk in expected[host]],
                    "agentPid": rec.agent_pid,
                    "error": rec.error or rec.reconcile_error,
                    "lastChange": dict(rec.change) if rec.change else None,
                    "desiredGeneration": rec.desired,
                    "realisedGeneration": rec.realised,
                })
        return rows
