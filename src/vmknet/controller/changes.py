"""The controller's side of network rollback (MGMT-2): one record per change in flight.

    armed -> applied -> committed        every armed host confirmed after the change
                     -> failed           some host did not (its agent rolled back)
          -> abandoned                   the apply failed before it completed

A host's confirm counts only once the change is applied: a connection that got
through before the change proves nothing about the network after it.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

ARMED, APPLIED, COMMITTED, FAILED, ABANDONED = (
    "armed", "applied", "committed", "failed", "abandoned")
# A batch of a rollout after it committed: the whole rollout stood (released) or a later
# batch failed and this one was taken back (reverted).
RELEASED, REVERTED = "released", "reverted"
# After an agent's deadline: its undo (~0.1 s), STP settling after a re-plug (up to ~8 s on a
# loaded box) and the reconnect that carries its report.
REPORT_GRACE = 12.0
HOLD = 2.0  # s a confirm waits for the change to be applied before it answers "pending"
KEEP = 50  # finished changes remembered (late confirms of a finished one still get an answer)


@dataclass
class Change:
    generation: str
    hosts: dict[str, str]  # host -> armed | confirmed | rolledBack
    phase: str = ARMED
    reports: dict[str, dict[str, Any]] = field(default_factory=dict)


class Changes:
    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._changes: dict[str, Change] = {}

    def arm(self, generation: str, hosts: list[str]) -> None:
        with self._cond:
            self._changes[generation] = Change(generation, dict.fromkeys(hosts, "armed"))
            for old in list(self._changes)[:-KEEP]:
                del self._changes[old]

    def set_phase(self, generation: str, phase: str) -> None:
        with self._cond:
            change = self._changes.get(generation)
            if change is not None:
                change.phase = phase
            self._cond.notify_all()

    def confirm(self, generation: str, host: str, hold: float = HOLD) -> str:
        """The answer to an agent's confirm: confirmed, pending or abandoned. While the
        change is still being applied the answer waits up to `hold` seconds (a long poll:
        an agent opens one connection, not one every few hundred milliseconds)."""
        with self._cond:
            change = self._changes.get(generation)
            if change is None or host not in change.hosts:
                return "abandoned"  # not a change this controller knows: nothing to keep
            self._cond.wait_for(lambda: change.phase != ARMED, hold)
            if change.phase in (ABANDONED, FAILED):
                return "abandoned"
            if change.phase == ARMED:
                return "pending"
            if change.hosts[host] == "armed":
                change.hosts[host] = "confirmed"
                self._cond.notify_all()
            return "confirmed" if change.hosts[host] == "confirmed" else "abandoned"

    def knows(self, generation: str, host: str) -> bool:
        """A report for this change and host is still news (not a repeat)."""
        with self._cond:
            change = self._changes.get(generation)
            return change is None or change.hosts.get(host) != "rolledBack"

    def rolled_back(self, generation: str, host: str, report: dict[str, Any]) -> bool:
        with self._cond:
            change = self._changes.get(generation)
            if change is None or host not in change.hosts:
                return False
            change.hosts[host] = "rolledBack"
            change.reports[host] = report
            self._cond.notify_all()
            return True

    def outcome(self, generation: str) -> str:
        """What an agent holding a confirmed part should do: keep waiting (pending), drop
        its undo (released) or run it (reverted; also for a change this controller does not
        know: a controller restarted mid-rollout never committed it)."""
        with self._cond:
            change = self._changes.get(generation)
            if change is None or change.phase in (FAILED, ABANDONED, REVERTED):
                return REVERTED
            return RELEASED if change.phase == RELEASED else "pending"

    def waited_for(self, generation: str) -> bool:
        """Someone waits, or will, for this change's verdict (and records its events). Also
        while still armed: a cut-off host's reply to `realise` only gets through once its
        agent has reverted, so its report can come first."""
        with self._cond:
            change = self._changes.get(generation)
            return change is not None and change.phase in (ARMED, APPLIED)

    def wait(self, generation: str, timeout: float) -> dict[str, Any]:
        """Until every host confirmed or rolled back, or `timeout`: host -> state, and the
        agents' reports. The change ends committed (all confirmed) or failed."""
        deadline = time.monotonic() + timeout
        with self._cond:
            change = self._changes[generation]
            while any(s == "armed" for s in change.hosts.values()):
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._cond.wait(left)
            ok = all(s == "confirmed" for s in change.hosts.values())
            change.phase = COMMITTED if ok else FAILED
            return {"hosts": dict(change.hosts), "reports": dict(change.reports)}
