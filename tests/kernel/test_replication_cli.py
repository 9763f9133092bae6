"""`vmknet replication` on a real lab: configure starts a daemon, status shows the RPO met,
recover registers the replica on the target, SVC-4 is refused, lab down leaves no daemon.

esx01 has vmk1 tagged vSphereReplication, esx04 vmk1 tagged vSphereReplicationNFC, vr01 is
the replication server (management only): bench/replication_lab.py.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from kernelkit import wait_until
from labkit import lab_name
from traffickit import wait_path

from vmknet.cli.main import main
from vmknet.inventory import Inventory
from vmknet.lab import lifecycle
from vmknet.model import DEFAULT_STACK
from vmknet.nfc import Datastores
from vmknet.processes import lab_pids
from vmknet.provision import files, placement
from vmknet.replication.procs import MARKER
from vmknet.vm import manage

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
from replication_lab import lab_yaml

MiB = 1 << 20
LAB = lab_yaml([("esx01", 11, "vSphereReplication"), ("esx04", 14, "vSphereReplicationNFC"),
                ("vr01", 20, None)])


@dataclass
class Env:
    lab: str
    store: Path
    inv: Inventory
    stores: Datastores

    def cli(self, *args: str) -> Result:
        return CliRunner().invoke(main, ["--store", str(self.store), *args])

    def vm(self, name: str) -> None:
        files.create(self.inv.read(), self.lab, name, "esx01", disk=32 * MiB, memory=8 * MiB,
                     dirty_rate=1_000_000, disk_data=4 * MiB, stores=self.stores)


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    folder = tmp_path_factory.mktemp("replcli")
    (folder / "lab.yaml").write_text(LAB, encoding="utf-8")
    inv = Inventory.open(folder / "inventory.db")
    name = lab_name()
    try:
        lifecycle.up(inv, folder / "lab.yaml", name)
        for host, target in (("esx01", "198.18.0.20"), ("vr01", "198.18.8.14")):
            wait_path(name, host, DEFAULT_STACK, target)
        yield Env(name, folder / "inventory.db", inv, Datastores(folder / "datastores"))
    finally:
        for rec in manage.records(name):
            manage.destroy(name, rec.name)
        lifecycle.down(inv, name)
        assert lab_pids(MARKER, name) == []


def _status(env: Env) -> dict[str, dict[str, object]]:
    out = env.cli("replication", "status", "--json")
    assert out.exit_code == 0, out.output
    return {r["vm"]: r for r in json.loads(out.output)}


def test_configure_status_recover(env: Env) -> None:
    env.vm("web01")
    out = env.cli("replication", "configure", "web01", "--server", "vr01", "--target", "esx04",
                  "--rpo", "2s", "--write-rate", "2MB/s", "--verify")
    print(out.output)
    assert out.exit_code == 0, out.output
    assert "esx01/vmk1" in out.output and "esx04/vmk1" in out.output
    assert len(lab_pids(MARKER, env.lab)) == 1
    again = env.cli("replication", "configure", "web01", "--server", "vr01", "--target",
                    "esx04", "--rpo", "2s")
    assert again.exit_code != 0 and "already replicated" in again.output
    assert wait_until(lambda: int(str(_status(env)["web01"]["syncs"])) >= 2, 20, step=0.2)
    row = _status(env)["web01"]
    assert row["state"] == "running" and row["missed"] == 0 and row["rpo"] == 2.0
    assert [f["source"] for f in row["leg1"]] == ["esx01/vmk1"]  # type: ignore[attr-defined]
    assert [f["target"] for f in row["leg2"]] == ["esx04/vmk1"]  # type: ignore[attr-defined]
    print(env.cli("replication", "status").output)
    out = env.cli("replication", "recover", "web01")
    print(out.output)
    assert out.exit_code == 0, out.output
    assert "equals the source" in out.output and "runs on esx04" in out.output
    assert lab_pids(MARKER, env.lab) == []  # recover stopped the daemon
    assert placement.load(env.lab, "web01").host == "esx04"
    assert [r.host for r in manage.records(env.lab) if r.name == "web01"] == ["esx04"]
    assert _status(env)["web01"]["state"] != "running"


def test_svc4_refused_before_anything_starts(env: Env) -> None:
    env.vm("web02")
    out = env.cli("replication", "configure", "web02", "--server", "vr01", "--target", "esx04",
                  "--rpo", "5m", "--netstack", "appstack")
    assert out.exit_code != 0 and "SVC-4" in out.output, out.output
    assert "web02" not in _status(env) and lab_pids(MARKER, env.lab) == []


def test_stop_then_lab_down_stops_replication(env: Env) -> None:
    env.vm("web03")
    args = ("replication", "configure", "web03", "--server", "vr01", "--target", "esx04",
            "--rpo", "5m")
    assert env.cli(*args).exit_code == 0
    out = env.cli("replication", "stop", "web03")
    assert out.exit_code == 0 and "stopped" in out.output, out.output
    assert lab_pids(MARKER, env.lab) == [] and _status(env)["web03"]["state"] != "running"
    out = env.cli(*args)
    assert out.exit_code == 0, out.output
    assert len(lab_pids(MARKER, env.lab)) == 1
    lifecycle.down(env.inv, env.lab)
    assert lab_pids(MARKER, env.lab) == []
