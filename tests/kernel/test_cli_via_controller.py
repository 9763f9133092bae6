"""The CLI is a client of the lab's controller: its changes are made by the controller.

One small lab with a controller and an agent per host. Each change is made with
the real `vmknet` command (a process of its own, like a user's): esxcli and
apply reach the lab's kernel only through the controller, which the tests
prove by stopping it (SIGSTOP: the command waits and nothing changes; SIGCONT:
it completes) and by killing it (a one-line ControllerNotRunning refusal,
nothing changed, until `lab status --repair` restarts it).
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from kernelkit import wait_until
from labkit import changed, dump, lab_name, write_small_lab

from vmknet.inventory import Inventory
from vmknet.lab import lifecycle
from vmknet.mgmt import paths
from vmknet.processes import lab_pids

VMKNET = str(Path(__file__).resolve().parents[2] / ".venv" / "bin" / "vmknet")


@dataclass
class Built:
    name: str
    store: Path
    inv: Inventory

    def cli(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run([VMKNET, "--store", str(self.store), *args], capture_output=True,
                              text=True, timeout=timeout)

    def popen(self, *args: str) -> subprocess.Popen[str]:
        return subprocess.Popen([VMKNET, "--store", str(self.store), *args],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def controller_pid(self) -> int:
        pids = lab_pids(paths.CONTROLLER_MARKER, self.name)
        assert len(pids) == 1, pids
        return pids[0]

    def vlan(self, host: str, portgroup: str) -> int:
        for vswitch in self.inv.read().host(host).vswitches.values():
            if portgroup in vswitch.portgroups:
                return vswitch.portgroups[portgroup].vlan
        raise AssertionError(portgroup)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Built]:
    folder = tmp_path_factory.mktemp("via-controller")
    store = folder / "inventory.db"
    inv = Inventory.open(store)
    name = lab_name()
    try:
        report = lifecycle.up(inv, write_small_lab(folder), name)
        assert report.management is not None
        yield Built(name, store, inv)
    finally:
        lifecycle.down(inv, name)


def _set_vlan(vlan: int) -> list[str]:
    return ["esxcli", "-H", "h1", "network", "vswitch", "standard", "portgroup", "set",
            "-p", "PG-A", "--vlan-id", str(vlan)]


def test_esxcli_is_made_by_the_controller_and_waits_for_it(built: Built) -> None:
    before = dump(f"vmkl-{built.name}.")
    version = built.inv.store.read()[0]
    pid = built.controller_pid()
    os.kill(pid, signal.SIGSTOP)
    try:
        proc = built.popen(*_set_vlan(72))
        time.sleep(3)
        # The CLI did not make the change itself: it waits for the controller.
        assert proc.poll() is None, proc.communicate()
        assert built.inv.store.read()[0] == version
        assert not changed(before, dump(f"vmkl-{built.name}."))
    finally:
        os.kill(pid, signal.SIGCONT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert built.vlan("h1", "PG-A") == 72
    assert changed(before, dump(f"vmkl-{built.name}."))  # and the kernel has it


def test_a_refusal_from_the_controller_reads_as_esxcli_prints_it(built: Built) -> None:
    version = built.inv.store.read()[0]
    got = built.cli("esxcli", "-H", "h1", "network", "vswitch", "standard", "add",
                    "-v", "vSwitch1")
    assert got.returncode == 4, got  # AlreadyExists, as locally
    assert got.stderr.strip() == "A portset with this name already exists"
    assert built.inv.store.read()[0] == version


def test_apply_is_rolled_out_by_the_controller(built: Built, tmp_path: Path) -> None:
    shown = built.cli("show")
    assert shown.returncode == 0, shown.stderr
    desired = tmp_path / "desired.yaml"
    desired.write_text(shown.stdout.replace("vlan: 72", "vlan: 73"), encoding="utf-8")
    got = built.cli("apply", "--yes", "--max-unavailable", "1", str(desired))
    assert got.returncode == 0, got.stderr
    assert "Applied 1 change." in got.stdout
    assert "Rolled out by the hosts' agents, 1 at a time: h1" in got.stdout
    assert built.vlan("h1", "PG-A") == 73


def test_a_dead_controller_refuses_in_one_line_until_repaired(built: Built) -> None:
    before = dump(f"vmkl-{built.name}.")
    version = built.inv.store.read()[0]
    os.kill(built.controller_pid(), signal.SIGKILL)
    assert wait_until(lambda: not lab_pids(paths.CONTROLLER_MARKER, built.name), 10) is not None
    got = built.cli(*_set_vlan(74))
    assert got.returncode == 1
    assert len(got.stderr.strip().splitlines()) == 1
    assert "is not running" in got.stderr and "lab status --repair" in got.stderr
    assert built.inv.store.read()[0] == version
    assert not changed(before, dump(f"vmkl-{built.name}."))
    repaired = built.cli("lab", "status", "--repair")
    assert repaired.returncode == 0, repaired.stdout + repaired.stderr
    got = built.cli(*_set_vlan(74))
    assert got.returncode == 0, got.stderr
    assert built.vlan("h1", "PG-A") == 74
