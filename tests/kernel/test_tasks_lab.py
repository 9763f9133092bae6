"""vMotion and cold migration are the controller's tasks, started by the CLI or over REST.

The example lab (controller, three hosts with vMotion and provisioning stacks).
The CLI's `vmotion` waits while the controller is stopped (SIGSTOP) and the VM
stays where it was: the migration is the controller's, not the command's; it
completes once the controller runs again. Over REST, an operator starts a
migration (202, a task) and follows it to its end; a read-only token may not.
Each ending is an event in the inventory (VmMigratedEvent, VmRelocatedEvent).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from labkit import lab_name

from vmknet.api import files
from vmknet.inventory import Inventory
from vmknet.lab import lifecycle
from vmknet.mgmt import paths
from vmknet.processes import lab_pids, parent
from vmknet.vm import manage

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "lab.yaml"
VMKNET = str(Path(__file__).resolve().parents[2] / ".venv" / "bin" / "vmknet")


@dataclass
class Built:
    name: str
    store: Path
    inv: Inventory

    def cmd(self, *args: str) -> list[str]:
        return [VMKNET, "--store", str(self.store), *args]

    def cli(self, *args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
        return subprocess.run(self.cmd(*args), capture_output=True, text=True, timeout=timeout)

    def host_of(self, vm: str) -> str:
        return manage.get(self.name, vm).host

    def rest(self, method: str, path: str, token: str, body: Any = None) -> tuple[int, Any]:
        url = files.served_url(self.name)
        assert url is not None
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(f"{url}{path}", data=data, method=method, headers={
            "Authorization": f"Bearer {token}", "Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=60) as r:
                return r.status, json.loads(r.read())
        except urllib.error.HTTPError as err:
            return err.code, json.loads(err.read())

    def token(self, role: str) -> str:
        made = self.cli("api", "token", "create", "--role", role, "--name", f"t-{role}")
        assert made.returncode == 0, made.stderr
        return made.stdout.strip()


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Built]:
    store = tmp_path_factory.mktemp("tasks") / "inventory.db"
    inv = Inventory.open(store)
    name = lab_name()
    try:
        lifecycle.up(inv, EXAMPLE, name)
        yield Built(name, store, inv)
    finally:
        lifecycle.down(inv, name)


def _events(b: Built, rule: str) -> list[str]:
    return [e.path for e in b.inv.events(200) if e.rule == rule]


def test_the_cli_vmotion_is_the_controllers_task(built: Built) -> None:
    made = built.cli("vm", "create", "web01", "-H", "esx01", "--memory", "64MiB",
                     "--dirty-rate", "2MB/s")
    assert made.returncode == 0, made.stderr
    [pid] = lab_pids(paths.CONTROLLER_MARKER, built.name)
    os.kill(pid, signal.SIGSTOP)
    try:
        moving = subprocess.Popen(built.cmd("vmotion", "web01", "--to", "esx02"),
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        time.sleep(3)
        assert moving.poll() is None, moving.communicate()
        assert built.host_of("web01") == "esx01"  # nothing moved without the controller
    finally:
        os.kill(pid, signal.SIGCONT)
    out, err = moving.communicate(timeout=180)
    assert moving.returncode == 0, out + err
    assert "vMotion web01 esx01 -> esx02: completed" in out
    assert built.host_of("web01") == "esx02"
    assert "vms/web01" in _events(built, "VmMigratedEvent")


def test_rest_starts_a_vmotion_and_follows_it(built: Built) -> None:
    reader, operator = built.token("read-only"), built.token("operator")
    status, body = built.rest("POST", "/api/v1/vms/web01/vmotion", reader, {"target": "esx01"})
    assert status == 403 and body["code"] == "NoPermission"
    status, body = built.rest("POST", "/api/v1/vms/web01/vmotion", operator,
                              {"target": "esx01", "maxDowntimeMs": 500})
    assert status == 202, body
    task_id = body["id"]
    rounds = 0
    after = 0
    deadline = time.monotonic() + 120
    while body["state"] == "running" and time.monotonic() < deadline:
        status, body = built.rest("GET", f"/api/v1/tasks/{task_id}?wait=10&after={after}",
                                  reader)
        assert status == 200, body
        for event in body["progress"]:
            after = max(after, event["seq"])
            rounds += event.get("event") == "round"
    assert body["state"] == "success", body
    assert body["result"]["result"] == "completed" and rounds >= 1
    assert built.host_of("web01") == "esx01"
    status, body = built.rest("POST", "/api/v1/vms/nosuch/vmotion", operator,
                              {"target": "esx02"})
    assert status == 202  # the task is made; it fails later, with the engine's code
    while body["state"] == "running":
        status, body = built.rest("GET", f"/api/v1/tasks/{body['id']}?wait=10", reader)
    assert body["state"] == "error" and body["error"]["code"] == "NotFound", body


def test_the_cli_cold_migration_is_the_controllers_task(built: Built) -> None:
    made = built.cli("vm", "create", "db01", "-H", "esx01", "--memory", "32MiB",
                     "--dirty-rate", "1MB/s", "--disk", "1GiB", "--disk-data", "8MiB")
    assert made.returncode == 0, made.stderr
    assert built.cli("vm", "power-off", "db01").returncode == 0
    moved = built.cli("vm", "migrate", "db01", "--to", "esx03", "--json")
    assert moved.returncode == 0, moved.stderr
    report = json.loads(moved.stdout)
    assert report["completed"] and report["target"].startswith("esx03")
    assert report["data_bytes"] >= 8 * 1024 * 1024
    assert "vms/db01" in _events(built, "VmRelocatedEvent")


def test_rest_boots_and_stops_a_vm_through_its_host_agent(built: Built) -> None:
    operator = built.token("operator")
    status, body = built.rest("POST", "/api/v1/vms", operator,
                              {"name": "app01", "host": "esx03", "memory": 32 << 20})
    assert status == 201, body
    assert body["state"] == "poweredOn" and body["host"] == "esx03"
    pid = body["pid"]
    agents = lab_pids(paths.AGENT_MARKER, built.name)
    assert parent(pid) in agents  # the host's agent is its parent, not the controller
    status, body = built.rest("POST", "/api/v1/vms", operator,
                              {"name": "app01", "host": "esx02", "memory": 32 << 20})
    assert status == 409 and body["code"] == "AlreadyExists", body
    status, body = built.rest("DELETE", "/api/v1/vms/app01", operator)
    assert status == 200 and body["state"] == "poweredOff", body
    assert not os.path.exists(f"/proc/{pid}")
    status, body = built.rest("DELETE", "/api/v1/vms/app01", operator)
    assert status == 404 and body["code"] == "NotFound", body
