"""The CLI's changes, sent to the controller that makes them (`inventory.*`, `task.*`).

With its controller running, a lab's inventory is changed by the controller
alone, as vCenter changes its hosts: the CLI reads the store to print and plan,
and sends the operation (`ops.codec`) or the desired-state document here; the
controller runs it through its own facade (rules, store, the rollout through
the agents) and answers with what happened. Refusals come back with their code
and details (`errors.from_dict`), so they read exactly as a local one would.
Multi-host operations (vMotion, migration, clone) are the controller's tasks:
started here, followed to their end (`controller/tasks.py`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..errors import from_dict
from ..events import Event
from ..ops import codec
from ..ops.execute import Operation
from .client import ControllerClient

# A change may wait for the agents' network rollback (rollbackTimeout, up to 600 s) per batch.
WRITE_TIMEOUT = 1800.0


@dataclass(frozen=True, slots=True)
class Applied:
    """The controller's answer to an apply: the store's version after it, how it rolled out."""

    version: int
    changes: int
    batches: list[list[str]]
    host_seconds: dict[str, float]


class InventoryWrites:
    def __init__(self, lab: str) -> None:
        self.client = ControllerClient(lab, timeout=WRITE_TIMEOUT)

    def run(self, operation: Operation) -> list[Event]:
        got = self.client.call("inventory.run", {"operation": codec.encode(operation)})
        return [Event(str(e["rule"]), str(e["path"]), str(e["message"]))
                for e in got.get("events", [])]

    def apply(self, document: str, version: int, max_unavailable: str | None) -> Applied:
        params: dict[str, Any] = {"document": document, "version": version}
        if max_unavailable is not None:
            params["maxUnavailable"] = max_unavailable
        got = self.client.call("inventory.apply", params)
        rollout = got.get("rollout") or {}
        return Applied(int(got["version"]), int(got["changes"]),
                       [list(b) for b in rollout.get("batches", [])],
                       {str(k): float(v) for k, v in rollout.get("hostSeconds", {}).items()})

    def task(self, kind: str, params: dict[str, Any],
             progress: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
        """Start a task in the controller and follow it: its report, or its error raised."""
        view = self.client.call("task.start", {"kind": kind, "params": params})
        after = 0
        while True:
            for event in view.get("progress", []):
                after = max(after, int(event["seq"]))
                progress(event)
            if view["state"] != "running":
                break
            view = self.client.call("task.wait", {"id": view["id"], "after": after,
                                                  "timeout": 10})
        if view.get("error"):
            raise from_dict(view["error"])
        return dict(view["result"] or {})
