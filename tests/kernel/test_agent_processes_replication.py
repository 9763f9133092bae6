"""Replication split per host: each part is its host agent's child (issue 9, one process model).

The replication lab with a controller (bench/replication_lab.py): `replication
configure` asks three agents through the controller: the source agent on esx01 (the
VM's host), the server endpoint on vr01, the replica endpoint on esx04. Each one's
parent is its host's agent and it is in that agent's `process.list` only; `stop`
ends all three; `kill -9` of the server's agent then `lab status --repair` adopts the
server (no second one) and the replication goes on; `lab down` leaves nothing.
"""

from __future__ import annotations

import json
import os
import signal
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from kernelkit import wait_until
from labkit import agent_pid, lab_name
from traffickit import wait_path

from vmknet.cli.main import main
from vmknet.controller.client import ControllerClient
from vmknet.inventory import Inventory
from vmknet.lab import lifecycle
from vmknet.model import DEFAULT_STACK
from vmknet.nfc import Datastores
from vmknet.processes import alive, parent
from vmknet.provision import files
from vmknet.supervise import scan

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
from replication_lab import lab_yaml

MiB = 1 << 20
LAB = lab_yaml([("esx01", 11, "vSphereReplication"), ("esx04", 14, "vSphereReplicationNFC"),
                ("vr01", 20, None)])
PARTS = {"esx01": "replication", "vr01": "replication-server", "esx04": "replica-nfc"}


@dataclass
class Env:
    lab: str
    store: Path
    inv: Inventory
    stores: Datastores

    def cli(self, *args: str) -> Result:
        return CliRunner().invoke(main, ["--store", str(self.store), *args])

    def agent(self, host: str) -> int:
        return agent_pid(self.lab, host)

    def listing(self, host: str) -> dict[str, Any]:
        (got,) = ControllerClient(self.lab).call("process.list", {"host": host})
        return dict(got)

    def rows(self, host: str) -> list[tuple[str, str, int, bool]]:
        return [(r["kind"], r["name"], r["pid"], r["child"])
                for r in self.listing(host)["processes"]]

    def syncs(self, vm: str) -> int:
        out = self.cli("replication", "status", "--json")
        assert out.exit_code == 0, out.output
        return int(next(r for r in json.loads(out.output) if r["vm"] == vm)["syncs"])


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    folder = tmp_path_factory.mktemp("agentrepl")
    (folder / "lab.yaml").write_text(LAB, encoding="utf-8")
    inv = Inventory.open(folder / "inventory.db")
    name = lab_name()
    try:
        assert lifecycle.up(inv, folder / "lab.yaml", name).management is not None
        for host, target in (("esx01", "198.18.0.20"), ("vr01", "198.18.8.14")):
            wait_path(name, host, DEFAULT_STACK, target)
        yield Env(name, folder / "inventory.db", inv, Datastores(folder / "datastores"))
    finally:
        lifecycle.down(inv, name)
    assert scan.scan(name) == [], "lab down left a process of the lab"


def _parts(env: Env) -> dict[str, tuple[str, int]]:
    """host -> (kind, pid) of the lab's replication processes, from /proc."""
    return {r.host: (r.kind, r.pid) for r in scan.scan(env.lab)
            if r.kind in ("replication", "replication-server", "replica-nfc")}


def _configure(env: Env, vm: str) -> None:
    files.create(env.inv.read(), env.lab, vm, "esx01", disk=32 * MiB, memory=8 * MiB,
                 dirty_rate=1_000_000, disk_data=4 * MiB, stores=env.stores)
    out = env.cli("replication", "configure", vm, "--server", "vr01", "--target", "esx04",
                  "--rpo", "2s", "--write-rate", "1MB/s")
    assert out.exit_code == 0, out.output


def test_each_part_is_its_hosts_agents_child(env: Env) -> None:
    _configure(env, "web01")
    parts = _parts(env)
    assert {h: k for h, (k, _) in parts.items()} == PARTS
    for host, (kind, pid) in parts.items():
        assert parent(pid) == env.agent(host), f"{kind} on {host}"
        name = "web01" if kind == "replication" else host
        assert env.rows(host) == [(kind, name, pid, True)]
    assert wait_until(lambda: env.syncs("web01") >= 2, 20, step=0.2) is not None

    out = env.cli("replication", "stop", "web01")
    assert out.exit_code == 0, out.output
    assert _parts(env) == {} and not any(alive(p) for _, p in parts.values())
    for host in PARTS:
        assert wait_until(lambda: all(env.rows(h) == [] for h in PARTS), 3) is not None
        assert env.listing(host)["died"] == []


def test_server_agent_killed_then_repair_adopts_it_once(env: Env) -> None:
    _configure(env, "web02")
    parts = _parts(env)
    agent = env.agent("vr01")
    os.kill(agent, signal.SIGKILL)
    assert wait_until(lambda: not alive(agent), 3) is not None
    state = lifecycle.status(env.inv)
    assert "agent of vr01" in state.stopped
    lifecycle.repair(env.inv, state)
    server = parts["vr01"][1]
    assert env.rows("vr01") == [("replication-server", "vr01", server, False)]
    assert _parts(env) == parts, "nothing started twice, nothing lost"
    done = env.syncs("web02")
    assert wait_until(lambda: env.syncs("web02") > done, 20, step=0.2) is not None
