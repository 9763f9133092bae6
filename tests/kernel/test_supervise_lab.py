"""One process model in the kernel: the host agent is the parent of its host's processes.

One example lab (a controller, an agent per host): `vm create` asks the
controller, which asks esx01's agent, which starts the VM as its own child.
The VM outlives an agent killed with -9 and the next agent adopts it; a
request outside the table of kinds starts nothing; `lab down` leaves no
process, also when an agent was killed first.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from kernelkit import wait_until
from labkit import agent_pid, lab_name

from vmknet.controller import lab as mgmt
from vmknet.controller.client import ControllerClient
from vmknet.dataplane import naming
from vmknet.errors import VmknetError
from vmknet.inventory import Inventory
from vmknet.lab import lifecycle
from vmknet.mgmt import paths
from vmknet.processes import alive, lab_pids, parent
from vmknet.supervise import scan
from vmknet.vm import manage

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "lab.yaml"
MiB = 1 << 20


@dataclass
class Built:
    name: str
    store: Path
    inv: Inventory

    def agent(self, host: str) -> int:
        return agent_pid(self.name, host)

    def processes(self, host: str) -> dict[str, Any]:
        (listing,) = ControllerClient(self.name).call("process.list", {"host": host})
        return dict(listing)

    def status(self, host: str) -> dict[str, Any]:
        return next(r for r in ControllerClient(self.name).host_status() if r["host"] == host)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Built]:
    store = tmp_path_factory.mktemp("supervise") / "inventory.db"
    inv = Inventory.open(store)
    name = lab_name()
    try:
        assert lifecycle.up(inv, EXAMPLE, name).management is not None
        yield Built(name, store, inv)
    finally:
        lifecycle.down(inv, name)
    assert scan.scan(name) == [], "lab down left a process of the lab"
    assert not lab_pids(paths.AGENT_MARKER, name) + lab_pids(paths.CONTROLLER_MARKER, name)


def test_vm_is_the_agents_child_outlives_it_and_is_adopted(built: Built) -> None:
    agent = built.agent("esx01")
    rec = manage.create(built.inv.read(), built.name, "web01", "esx01", 8 * MiB, 1 * MiB)
    assert rec.host == "esx01" and parent(rec.pid) == agent
    rows = built.processes("esx01")["processes"]
    assert [(r["kind"], r["name"], r["pid"], r["child"]) for r in rows] == [
        ("vm", "web01", rec.pid, True)]

    os.kill(agent, signal.SIGKILL)
    assert wait_until(lambda: not alive(agent), 3) is not None
    assert alive(rec.pid), "the VM must outlive its agent (as on a hostd restart)"
    assert manage.get(built.name, "web01").pid == rec.pid

    assert mgmt.start(built.name, built.inv.read(), str(built.store)).started == ["esx01"]
    rows = built.processes("esx01")["processes"]
    assert [(r["kind"], r["name"], r["pid"], r["child"]) for r in rows] == [
        ("vm", "web01", rec.pid, False)]  # adopted: found by the registry and /proc
    assert manage.status(built.name, "web01")["running"]
    manage.destroy(built.name, "web01")
    assert wait_until(lambda: not built.processes("esx01")["processes"], 3) is not None


@pytest.mark.parametrize("request_", [
    {"host": "esx01", "kind": "shell", "name": "x", "args": {"argv": ["/bin/sh"]}},
    {"host": "esx01", "kind": "incoming", "name": "web02", "args": {}},
    {"host": "esx01", "kind": "vm", "name": "web02", "args": {"memory": 8 * MiB,
                                                              "argv": ["--lab=other"]}},
    {"host": "esx01", "kind": "vm", "name": "../web02", "args": {"memory": 8 * MiB}},
    {"host": "esx01", "kind": "vm", "name": "web02", "args": {"memory": -1}},
    {"host": "esx01", "kind": "nfc", "name": "esx02", "args": {}},
    {"host": "esx01", "kind": "nfc", "name": "esx01", "args": {"base": "../../etc"}},
])
def test_start_outside_the_table_is_refused(built: Built, request_: dict[str, Any]) -> None:
    before = scan.scan(built.name)
    with pytest.raises(VmknetError) as err:
        ControllerClient(built.name).call("process.start", request_)
    assert err.value.code == "InvalidArgument"
    assert scan.scan(built.name) == before


AGENT_CALL = """
import json, sys
from vmknet.controller.service import Controller
from vmknet.errors import VmknetError
from vmknet.inventory import Inventory
from vmknet.mgmt import paths
lab, store, request = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
inv = Inventory.open(store)
ctl = Controller(paths.controller_dir(lab), lab, inv.read)
try:
    print(json.dumps(ctl.call_agent("esx02", "process.start", request)))
except VmknetError as err:
    print(err.code)
"""


@pytest.mark.parametrize("request_", [{"kind": "shell", "name": "x"},
                                      {"kind": "vm", "name": "x", "args": {}},
                                      {"kind": "vm", "name": "x", "args": {"memory": 1,
                                                                           "ready-fd": 0}}])
def test_agent_refuses_by_itself(built: Built, request_: dict[str, Any]) -> None:
    """The agent checks the table itself: a caller past the controller's check (here the
    controller's own credential, from the controller's namespace) starts nothing."""
    out = subprocess.run(["ip", "netns", "exec", naming.controller_ns(built.name),
                          sys.executable, "-c", AGENT_CALL, built.name, str(built.store),
                          json.dumps(request_)], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "InvalidArgument", out.stderr
    assert scan.scan(built.name) == []


def test_unexpected_death_is_reported(built: Built) -> None:
    rec = manage.create(built.inv.read(), built.name, "db01", "esx02", 8 * MiB, 0)
    assert parent(rec.pid) == built.agent("esx02")
    os.kill(rec.pid, signal.SIGKILL)
    assert wait_until(lambda: bool(built.processes("esx02")["died"]), 5) is not None
    (died,) = built.processes("esx02")["died"]
    assert (died["kind"], died["name"], died["pid"], died["exit"]) == (
        "vm", "db01", rec.pid, -signal.SIGKILL)
    # The next heartbeat carries it to the controller: an event, once; the host stays
    # healthy (a crashed VM is not a failed host).
    def logged() -> list[str]:
        return [e.message for e in built.inv.events(50) if e.rule == "ProcessDiedEvent"
                and e.path == "hosts/esx02/processes/vm/db01"]
    assert wait_until(lambda: logged(), 5) is not None
    time.sleep(2.5)  # more heartbeats: acknowledged, so not logged again
    assert logged() == [f"vm db01 (pid {rec.pid}) on esx02 died unexpectedly: killed by "
                        "signal 9"]
    assert built.status("esx02")["error"] is None
    assert built.status("esx02")["condition"] == "Available"


def test_nfc_server_started_by_the_agent(built: Built, tmp_path: Path) -> None:
    got = ControllerClient(built.name).call("process.start", {
        "host": "esx03", "kind": "nfc", "name": "esx03", "args": {"base": str(tmp_path)}})
    assert got["kind"] == "nfc" and parent(int(got["pid"])) == built.agent("esx03")
    ControllerClient(built.name).call("process.stop", {"host": "esx03", "kind": "nfc",
                                                       "name": "esx03"})
    assert not alive(int(got["pid"]))
    assert built.processes("esx03")["died"] == []  # asked to stop: not a death


def test_lab_down_after_an_agent_was_killed_leaves_nothing(built: Built) -> None:
    """Last: the agent of esx01 dies with -9 while its VM runs; lab down (the fixture's
    teardown) must still end the VM (its /proc sweep) and check that nothing is left."""
    rec = manage.create(built.inv.read(), built.name, "app01", "esx01", 8 * MiB, 0)
    agent = built.agent("esx01")
    assert parent(rec.pid) == agent
    os.kill(agent, signal.SIGKILL)
    assert wait_until(lambda: not alive(agent), 3) is not None
    assert alive(rec.pid)
