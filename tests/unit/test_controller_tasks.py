"""The controller's tasks (controller/tasks.py) and their REST routes (api/routes_tasks.py).

Runners are stand-ins here (no lab): what is tested is the task's life: checked
parameters, one task per VM, progress in order, the outcome or the error with
its code, the ending event, and the same through REST with roles.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import given, settings
from hypothesis import strategies as st

from vmknet.api.app import create_app
from vmknet.api.tokens import ROLES, TokenBook
from vmknet.controller.service import Controller
from vmknet.controller.tasks import MigrateParams, Tasks, VmotionParams
from vmknet.errors import InvalidArgument, NoPath, NotFound, ResourceInUse
from vmknet.events import Event
from vmknet.inventory import Inventory
from vmknet.model import Datacenter
from vmknet.state import load_file

LAB = Path(__file__).resolve().parents[2] / "examples" / "lab.yaml"
Progress = Callable[[dict[str, Any]], None]


class Gate:
    """A runner that reports two progress events, then waits to be let go."""

    def __init__(self, completed: bool = True, error: Exception | None = None) -> None:
        self.go = threading.Event()
        self.completed, self.error = completed, error
        self.seen: list[Any] = []

    def __call__(self, dc: Datacenter, lab: str, params: Any, progress: Progress
                 ) -> tuple[bool, dict[str, Any], str]:
        self.seen.append(params)
        progress({"event": "round", "round": 1})
        progress({"event": "round", "round": 2})
        assert self.go.wait(10)
        if self.error is not None:
            raise self.error
        return self.completed, {"vm": params.vm, "result": "ok"}, f"moved {params.vm}"


@pytest.fixture
def dc() -> Datacenter:
    return load_file(LAB)


def make(dc: Datacenter, runner: Gate) -> tuple[Tasks, list[Event]]:
    events: list[Event] = []
    return Tasks("unit", lambda: dc, events.extend,
                 {"vmotion": runner, "migrate": runner, "clone": runner}), events


def test_a_task_reports_progress_then_its_result_and_an_event(dc: Datacenter) -> None:
    gate = Gate()
    tasks, events = make(dc, gate)
    started = tasks.start("vmotion", {"vm": "web01", "target": "esx02", "maxDowntimeMs": 50})
    assert started["state"] == "running" and started["entity"] == "vms/web01"
    first = tasks.wait(started["id"], 0, 5)
    assert [e["round"] for e in first["progress"]][:1] == [1]
    with pytest.raises(ResourceInUse, match="Another task is already in progress"):
        tasks.start("migrate", {"vm": "web01", "target": "esx03"})
    gate.go.set()
    seq = max(e["seq"] for e in first["progress"])
    last = first
    while last["state"] == "running":
        last = tasks.wait(started["id"], seq, 5)
    assert last["state"] == "success" and last["result"] == {"vm": "web01", "result": "ok"}
    assert isinstance(gate.seen[0], VmotionParams) and gate.seen[0].maxDowntimeMs == 50
    assert [(e.rule, e.path) for e in events] == [("VmMigratedEvent", "vms/web01")]
    assert [t["id"] for t in tasks.list()] == [started["id"]]
    # Ended: the VM takes a new task.
    tasks.start("migrate", {"vm": "web01", "target": "esx03"})


def test_a_failed_task_keeps_the_code_of_its_error(dc: Datacenter) -> None:
    gate = Gate(error=NoPath("No provisioning path from esx01 to esx03"))
    gate.go.set()
    tasks, events = make(dc, gate)
    started = tasks.start("clone", {"vm": "db01", "target": "esx03", "name": "db02"})
    view = started
    while view["state"] == "running":
        view = tasks.wait(started["id"], 0, 5)
    assert view["state"] == "error" and view["error"]["code"] == "NoPath"
    assert events[0].rule == "VmCloneFailedEvent" and "[NoPath]" in events[0].message


def test_an_aborted_migration_is_an_error_with_its_report(dc: Datacenter) -> None:
    gate = Gate(completed=False)
    gate.go.set()
    tasks, events = make(dc, gate)
    started = tasks.start("vmotion", {"vm": "web01", "target": "esx02"})
    view = started
    while view["state"] == "running":
        view = tasks.wait(started["id"], 0, 5)
    assert view["state"] == "error" and view["error"] is None and view["result"]
    assert events[0].rule == "VmFailedMigrateEvent"


@pytest.mark.parametrize("kind, params, says", [
    ("vmotion", {"vm": "../etc", "target": "esx02"}, "vm"),
    ("vmotion", {"vm": "web01", "target": "esx02", "maxDowntimeMs": 0}, "maxDowntimeMs"),
    ("vmotion", {"vm": "web01", "target": "esx02", "encryption": "maybe"}, "encryption"),
    ("vmotion", {"vm": "web01", "target": "esx02", "ticket": "x"}, "ticket"),
    ("migrate", {"vm": "web01"}, "target"),
    ("migrate", {"vm": "web01", "target": "esx02", "limit": -1}, "limit"),
    ("clone", {"vm": "web01", "target": "esx02"}, "name"),
    ("format", {"vm": "web01", "target": "esx02"}, "Unknown task kind"),
])
def test_bad_parameters_are_refused_before_a_task_exists(dc: Datacenter, kind: str,
                                                          params: dict[str, Any],
                                                          says: str) -> None:
    gate = Gate()
    tasks, _ = make(dc, gate)
    with pytest.raises(InvalidArgument, match=says):
        tasks.start(kind, params)
    assert tasks.list() == [] and gate.seen == []


def test_an_unknown_host_or_task_is_not_found(dc: Datacenter) -> None:
    tasks, _ = make(dc, Gate())
    with pytest.raises(NotFound, match="esx99"):
        tasks.start("migrate", {"vm": "web01", "target": "esx99"})
    with pytest.raises(NotFound):
        tasks.get("0123")
    with pytest.raises(NotFound):
        tasks.wait("0123", 0, 0.1)


@settings(max_examples=100, deadline=None)
@given(st.dictionaries(st.sampled_from(["vm", "target", "datastore", "limit", "name", "x"]),
                       st.none() | st.integers(-5, 5) | st.text(max_size=10), max_size=5))
def test_start_refuses_with_invalid_argument_or_starts(params: dict[str, Any]) -> None:
    tasks, _ = make(load_file(LAB), Gate())
    try:
        view = tasks.start("migrate", params)
    except (InvalidArgument, NotFound):
        return
    assert view["state"] == "running"
    MigrateParams.model_validate(view["params"])


# -- REST -----------------------------------------------------------------------------------


@pytest.fixture
def rest(tmp_path: Path) -> Iterator[tuple[TestClient, dict[str, str], Gate]]:
    store = tmp_path / "inventory.db"
    Inventory.open(store).apply(load_file(LAB))
    book = TokenBook(tmp_path / "controller" / "api-tokens.json")
    tokens = {role: book.create(role, f"t-{role}")[0] for role in ROLES}
    controller = Controller(tmp_path / "controller", "unit", lambda: Inventory.open(store).read())
    gate = Gate()
    controller.tasks = make(Inventory.open(store).read(), gate)[0]
    with TestClient(create_app(controller, lambda: Inventory.open(store), book)) as client:
        yield client, tokens, gate
    gate.go.set()
    controller.stop()


def test_rest_starts_and_follows_a_task_by_role(
        rest: tuple[TestClient, dict[str, str], Gate]) -> None:
    client, tokens, gate = rest

    def auth(role: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {tokens[role]}"}

    assert client.post("/api/v1/vms/web01/vmotion", json={"target": "esx02"}).status_code == 401
    denied = client.post("/api/v1/vms/web01/vmotion", json={"target": "esx02"},
                         headers=auth("read-only"))
    assert denied.status_code == 403
    bad = client.post("/api/v1/vms/web01/vmotion", json={"target": "esx02", "vm": "other"},
                      headers=auth("operator"))
    assert bad.status_code == 400 and bad.json()["code"] == "InvalidArgument"
    got = client.post("/api/v1/vms/web01/vmotion", json={"target": "esx02"},
                      headers=auth("operator"))
    assert got.status_code == 202, got.text
    task_id = got.json()["id"]
    busy = client.post("/api/v1/vms/web01/migrate", json={"target": "esx03"},
                       headers=auth("operator"))
    assert busy.status_code == 409 and busy.json()["code"] == "ResourceInUse"
    gate.go.set()
    view = client.get(f"/api/v1/tasks/{task_id}?wait=5", headers=auth("read-only")).json()
    while view["state"] == "running":
        view = client.get(f"/api/v1/tasks/{task_id}?wait=5&after=2",
                          headers=auth("read-only")).json()
    assert view["state"] == "success"
    listed = client.get("/api/v1/tasks", headers=auth("read-only")).json()
    assert [t["id"] for t in listed] == [task_id]
    missing = client.get("/api/v1/tasks/nope", headers=auth("read-only"))
    assert missing.status_code == 404 and missing.json()["code"] == "NotFound"


def test_rest_vm_power_operations_check_before_they_act(
        rest: tuple[TestClient, dict[str, str], Gate]) -> None:
    client, tokens, _ = rest
    reader = {"Authorization": f"Bearer {tokens['read-only']}"}
    operator = {"Authorization": f"Bearer {tokens['operator']}"}
    body = {"name": "web01", "host": "esx01", "memory": 64 << 20}
    assert client.post("/api/v1/vms", json=body, headers=reader).status_code == 403
    for bad in ({**body, "name": "../x"}, {**body, "memory": 1}, {**body, "extra": 1},
                {"host": "esx01"}):
        got = client.post("/api/v1/vms", json=bad, headers=operator)
        assert got.status_code in (400, 422) and got.json()["code"], got.text
    # This store is not bound to a lab: nothing to boot in, a coded refusal.
    unbound = client.post("/api/v1/vms", json=body, headers=operator)
    assert 400 <= unbound.status_code < 500 and unbound.json()["code"], unbound.text
    gone = client.delete("/api/v1/vms/web01", headers=operator)
    assert 400 <= gone.status_code < 500 and gone.json()["code"], gone.text
    assert client.delete("/api/v1/vms/web01", headers=reader).status_code == 403
