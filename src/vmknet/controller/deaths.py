"""Processes that died unexpectedly on a host, as events (not as the host's condition).

A host's agent reaps its children (VMs, engine servers); one that dies without
being asked to (a crashed VM, an FT primary killed so its secondary goes live)
is the process's failure, not the host's: the host stays Available and the
death is an event (`ProcessDiedEvent`), as vCenter logs a VM's crash beside a
connected host. The agent's heartbeat carries the deaths the controller has not
acknowledged; the reply echoes the newest one recorded, so each is logged once
per controller and the agent stops sending it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from ..events import Event

MAX_PER_BEAT = 8  # more than the agent sends: a hostile or confused agent is cut short


def _exit(code: int) -> str:
    return f"killed by signal {-code}" if code < 0 else f"exit status {code}"


class Deaths:
    def __init__(self, record: Callable[[list[Event]], None]) -> None:
        self._record = record
        self._newest: dict[str, float] = {}  # host -> `at` of the newest death recorded
        self._lock = threading.Lock()

    def beat(self, host: str, died: object) -> dict[str, Any]:
        """Record the new deaths of one heartbeat; the reply's acknowledgement (or nothing)."""
        if not isinstance(died, list):
            return {}
        events: list[Event] = []
        with self._lock:
            newest = self._newest.get(host, 0.0)
            for d in died[:MAX_PER_BEAT]:
                if not (isinstance(d, dict) and isinstance(d.get("at"), (int, float))
                        and isinstance(d.get("pid"), int) and isinstance(d.get("exit"), int)):
                    continue  # not what an agent sends: ignored, never raised on the loop
                at = float(d["at"])
                if at <= self._newest.get(host, 0.0):
                    continue  # a repeat: its acknowledgement was lost
                kind, name = str(d.get("kind", ""))[:32], str(d.get("name", ""))[:128]
                events.append(Event(
                    "ProcessDiedEvent", f"hosts/{host}/processes/{kind}/{name}",
                    f"{kind} {name} (pid {d['pid']}) on {host} died unexpectedly: "
                    f"{_exit(int(d['exit']))}"))
                newest = max(newest, at)
            self._newest[host] = newest
        if events:  # the store is written off the door's event loop
            threading.Thread(target=self._record, args=(events,), daemon=True).start()
        return {"diedAcked": newest} if newest else {}
