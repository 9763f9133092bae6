"""Tasks: the multi-host operations the controller runs for its clients, as vCenter does.

A vMotion, a cold migration or a clone involves two hosts, their agents and
several processes. The controller runs it (the orchestrators in `vmotion/` and
`provision/`, which ask the agents at both ends for tickets and processes), so
a client only starts it and watches: `task.start` answers at once with the
task; `task.wait` answers with the progress events after a given one, or the
outcome; `task.get` and `task.list` read them. A task goes on when its client
goes away, like a vCenter task. The REST API starts and reads the same tasks.

Parameters are checked before a task exists (names by their rules, numbers in
their ranges); a VM has at most one task running (vCenter: "Another task is
already in progress"); each ending is an event (VmMigratedEvent,
VmRelocatedEvent, VmClonedEvent, or the failed forms).
"""

from __future__ import annotations

import contextlib
import itertools
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ..errors import InvalidArgument, NotFound, ResourceInUse, translate
from ..events import Event
from ..mgmt import wire
from ..model import Datacenter
from ..model.names import DatastoreName, HostName, VmName

EVENTS_KEPT = 500  # progress events a task keeps (a client that falls behind sees the last)
TASKS_KEPT = 200  # ended tasks kept for task.get / task.list
MAX_WAIT = 30.0  # s one task.wait may hold its answer

Rate = Annotated[float, Field(gt=0, le=1e12)]  # bytes/s


class _Params(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    vm: VmName
    target: HostName


class VmotionParams(_Params):
    maxDowntimeMs: Annotated[float, Field(ge=1, le=60000)] = 100
    encryption: Literal["disabled", "opportunistic", "required"] = "opportunistic"
    timeout: Annotated[float, Field(ge=1, le=600)] = 15
    rateLimit: Rate | None = None
    datastore: DatastoreName | None = None


class MigrateParams(_Params):
    datastore: DatastoreName | None = None
    limit: Rate | None = None


class CloneParams(MigrateParams):
    name: VmName


PARAMS: dict[str, type[_Params]] = {"vmotion": VmotionParams, "migrate": MigrateParams,
                                    "clone": CloneParams}
# vSphere's event for each ending: (completed, failed)
ENDINGS = {"vmotion": ("VmMigratedEvent", "VmFailedMigrateEvent"),
           "migrate": ("VmRelocatedEvent", "VmFailedRelocateEvent"),
           "clone": ("VmClonedEvent", "VmCloneFailedEvent")}

# Runs a task: (datacenter, lab, params, progress) -> (completed, report as a dict, summary)
Runner = Callable[[Datacenter, str, Any, Callable[[dict[str, Any]], None]],
                  tuple[bool, dict[str, Any], str]]


@dataclass
class Task:
    id: str
    kind: str
    vm: str
    params: dict[str, Any]
    state: str = "running"  # running | success | error
    started: float = field(default_factory=time.time)
    finished: float | None = None
    events: list[tuple[int, dict[str, Any]]] = field(default_factory=list)
    result: dict[str, Any] | None = None
    error: dict[str, Any] | None = None

    def view(self, after: int = 0) -> dict[str, Any]:
        return {"id": self.id, "kind": self.kind, "entity": f"vms/{self.vm}",
                "params": self.params, "state": self.state, "started": self.started,
                "finished": self.finished,
                "progress": [dict(e, seq=n) for n, e in self.events if n > after],
                "result": self.result, "error": self.error}


class Tasks:
    def __init__(self, lab: str, datacenter: Callable[[], Datacenter],
                 record: Callable[[list[Event]], None], runners: dict[str, Runner]) -> None:
        self.lab = lab
        self.datacenter = datacenter
        self.record = record
        self.runners = runners
        self._tasks: dict[str, Task] = {}
        self._seq = itertools.count(1)
        self._changed = threading.Condition()

    def start(self, kind: str, given: dict[str, Any]) -> dict[str, Any]:
        if kind not in self.runners:
            raise InvalidArgument(f"Unknown task kind {str(kind)[:40]!r}: "
                                  f"{', '.join(sorted(self.runners))}")
        try:
            params = PARAMS[kind].model_validate(given)
        except ValidationError as err:
            first = err.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            raise InvalidArgument(f"{kind}: {where}: {first['msg']}") from None
        dc = self.datacenter()
        if params.target not in dc.hosts:
            raise NotFound(f"Host {params.target} not found")
        vm = params.vm
        with self._changed:
            busy = [t for t in self._tasks.values() if t.vm == vm and t.state == "running"]
            if busy:
                raise ResourceInUse(f"Another task is already in progress on VM {vm} "
                                    f"({busy[0].kind} {busy[0].id})", task=busy[0].id)
            task = Task(secrets.token_hex(8), kind, vm, params.model_dump(mode="json"))
            self._tasks[task.id] = task
            self._forget_old()
        threading.Thread(target=self._run, args=(task, dc, params), daemon=True,
                         name=f"task-{task.id}").start()
        return task.view()

    def _run(self, task: Task, dc: Datacenter, params: _Params) -> None:
        def progress(event: dict[str, Any]) -> None:
            with self._changed:
                task.events.append((next(self._seq), event))
                del task.events[:-EVENTS_KEPT]
                self._changed.notify_all()

        done, failed = ENDINGS[task.kind]
        try:
            completed, report, summary = self.runners[task.kind](dc, self.lab, params, progress)
            ending = (done if completed else failed, summary)
            outcome: dict[str, Any] = {"result": report,
                                       "state": "success" if completed else "error"}
        except Exception as exc:  # every failure is the task's outcome, never the thread's end
            err = translate(exc)
            ending = (failed, f"{task.kind} of {task.vm}: [{err.code}] {err.message}")
            outcome = {"error": err.to_dict(), "state": "error"}
        with self._changed:
            task.result = outcome.get("result")
            task.error = outcome.get("error")
            task.state, task.finished = outcome["state"], time.time()
            self._changed.notify_all()
        # A store away must not end this thread with a traceback: the task says how it ended.
        with contextlib.suppress(Exception):
            self.record([Event(ending[0], f"vms/{task.vm}", ending[1][:500])])

    def _forget_old(self) -> None:
        ended = [t for t in self._tasks.values() if t.state != "running"]
        for task in sorted(ended, key=lambda t: t.finished or 0)[:-TASKS_KEPT or None]:
            del self._tasks[task.id]

    def get(self, task_id: str, after: int = 0) -> dict[str, Any]:
        with self._changed:
            task = self._tasks.get(task_id)
            if task is None:
                raise NotFound(f"Task {str(task_id)[:40]} not found")
            return task.view(after)

    def wait(self, task_id: str, after: int, timeout: float) -> dict[str, Any]:
        """The task once it has progress after `after` or has ended, or at `timeout`."""
        deadline = time.monotonic() + min(max(timeout, 0.0), MAX_WAIT)
        with self._changed:
            while True:
                task = self._tasks.get(task_id)
                if task is None:
                    raise NotFound(f"Task {str(task_id)[:40]} not found")
                fresh = any(n > after for n, _ in task.events)
                left = deadline - time.monotonic()
                if fresh or task.state != "running" or left <= 0:
                    return task.view(after)
                self._changed.wait(left)

    def list(self) -> list[dict[str, Any]]:
        with self._changed:
            return [dict(t.view(), progress=[]) for t in
                    sorted(self._tasks.values(), key=lambda t: t.started)]

    def handlers(self) -> dict[str, wire.Handler]:
        return {
            "task.start": lambda p: self.start(str(p["kind"]), dict(p.get("params") or {})),
            "task.get": lambda p: self.get(str(p["id"])),
            "task.wait": lambda p: self.wait(str(p["id"]), int(p.get("after", 0)),
                                             float(p.get("timeout", MAX_WAIT))),
            "task.list": lambda p: self.list(),
        }
