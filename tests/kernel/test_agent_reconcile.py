"""Agents reconcile (MGMT-3) in the kernel: drift, kill -9 of an agent half way through a
rollout's part, kill -9 of the controller with a VM running.

One small lab (two hosts, a controller, an agent each) for the module; each test leaves it
converged, so the next starts from the committed state. Waits are bounded: an agent's timer
pass comes within `reconcile.INTERVAL`, a new generation within a heartbeat or two.
"""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from kernelkit import wait_until
from labkit import agent_pid, write_small_lab
from vmotionkit import VMOTION_LAB, vm_processes, wait_writes

from vmknet.agent import faults
from vmknet.agent.reconcile import INTERVAL
from vmknet.controller import lab as mgmt
from vmknet.controller.client import ControllerClient
from vmknet.controller.desired import host_part
from vmknet.dataplane import naming
from vmknet.dataplane.kstate import KernelState
from vmknet.dataplane.linux import LinuxBackend
from vmknet.dataplane.plan import canonical
from vmknet.errors import VmknetError
from vmknet.inventory import Inventory
from vmknet.lab import lifecycle
from vmknet.lab.realise import KernelRealiser
from vmknet.mgmt import paths
from vmknet.model import Datacenter
from vmknet.nfc import Datastores
from vmknet.processes import alive, lab_pids
from vmknet.provision import cold, files, placement
from vmknet.vm import manage
from vmknet.vmotion import migrate

HOSTS = ["h1", "h2"]
MiB = 1 << 20
SETTLED = 15.0  # s: a new generation reaches every agent and its pass runs


@dataclass
class Built:
    name: str
    store: Path
    inv: Inventory

    def ns(self, host: str, stack: str = "defaultTcpipStack") -> str:
        return naming.stack_ns(self.name, host, stack)

    def agent(self, host: str) -> int:
        return agent_pid(self.name, host)

    def status(self) -> dict[str, dict[str, Any]]:
        return {r["host"]: r for r in ControllerClient(self.name).host_status()}

    def part(self, host: str) -> KernelState:
        state = LinuxBackend().read(naming.prefix(self.name))
        return canonical(host_part(state, self.name, host, HOSTS))


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Built]:
    folder = tmp_path_factory.mktemp("reconcile")
    inv = Inventory.open(folder / "inventory.db")
    name = f"t{os.getpid()}-h13"  # under the kernel suite's leak check
    try:
        assert lifecycle.up(inv, write_small_lab(folder), name).management is not None
        yield Built(name, folder / "inventory.db", inv)
    finally:
        lifecycle.down(inv, name)
    assert not lab_pids(paths.AGENT_MARKER, name) + lab_pids(paths.CONTROLLER_MARKER, name)


def _converged(b: Built) -> bool:
    """Every host Available, its agent at the committed generation, the kernel in sync."""
    rows = b.status()
    return all(r["condition"] == "Available" and r["desiredGeneration"] is not None
               and r["desiredGeneration"] == r["realisedGeneration"] for r in rows.values()) \
        and not lifecycle.status(b.inv).drift


def _mtu(b: Built, host: str, vmk: str = "vmk1") -> int | None:
    out = subprocess.run(["ip", "-n", b.ns(host), "-o", "link", "show", vmk],
                         capture_output=True, text=True, check=False).stdout
    return int(out.split(" mtu ")[1].split()[0]) if " mtu " in out else None


def _with_vmk1_mtu(b: Built, mtu: int) -> Datacenter:
    dc = b.inv.read().model_copy(deep=True)
    for host in HOSTS:
        dc.hosts[host].vmknics["vmk1"].mtu = mtu
    return dc


def _reconciled_events(b: Built) -> list[tuple[str, str]]:
    return [(e.path, e.message) for e in b.inv.events(50)
            if "HostReconciledEvent" in e.message]


def test_drift_made_with_ip_is_repaired_by_the_hosts_agent_alone(built: Built) -> None:
    assert wait_until(lambda: _converged(built), 20) is not None
    other = built.part("h2")
    before = len(_reconciled_events(built))
    subprocess.run(["ip", "-n", built.ns("h1"), "link", "del", "vmk1"], check=True)
    assert _mtu(built, "h1") is None
    # Nothing told the agent: its timer pass finds the drift.
    assert wait_until(lambda: _mtu(built, "h1") == 1500, INTERVAL + 10) is not None
    assert wait_until(lambda: not lifecycle.status(built.inv).drift, 10) is not None
    assert built.part("h2") == other  # the other host: not one op
    events = _reconciled_events(built)[before:]
    assert [path for path, _ in events] == ["hosts/h1"], events
    assert "vmk1" in events[0][1]


@pytest.mark.parametrize("fault", ["realise:1", "watch"])
def test_agent_killed_during_a_rollouts_realise_converges_when_restarted(built: Built,
                                                                        fault: str) -> None:
    """Kill points: h1's agent dies (SIGKILL) right after the first kernel op of its part of
    a rollout (`realise:1`), or once its whole part ran and is armed on disk, before any
    confirmation (`watch`). The rollout fails and the store does not move; the agent, started
    again as `lab status --repair` does, puts h1 back to the committed state by itself (the
    resumed guard hears "abandoned" and runs no undo: the reconcile pass does the repair)."""
    assert wait_until(lambda: _converged(built), 20) is not None
    realiser = built.inv.realiser
    assert isinstance(realiser, KernelRealiser)
    first = built.agent("h1")
    os.kill(first, signal.SIGKILL)
    assert wait_until(lambda: not alive(first), 5) is not None
    os.environ[faults.ENV] = fault
    try:
        assert mgmt.start(built.name, built.inv.read(), str(built.store)).started == ["h1"]
    finally:
        del os.environ[faults.ENV]
    faulty = built.agent("h1")
    assert wait_until(lambda: built.status()["h1"]["connected"], 10) is not None
    before = built.inv.store.read()
    realiser.max_unavailable = "1"  # h1 first, alone
    try:
        with pytest.raises(VmknetError):
            built.inv.apply(_with_vmk1_mtu(built, 1400))
    finally:
        realiser.max_unavailable = "50%"
    assert wait_until(lambda: not alive(faulty), 5) is not None, "the kill point did not fire"
    assert built.inv.store.read() == before
    drift = lifecycle.status(built.inv)
    assert drift.drift and drift.stopped == ["agent of h1"]  # half a part ran on h1
    assert mgmt.start(built.name, built.inv.read(), str(built.store)).started == ["h1"]
    assert wait_until(lambda: _converged(built), SETTLED) is not None
    assert [_mtu(built, h) for h in HOSTS] == [1500, 1500]
    row = built.status()["h1"]
    assert row["condition"] == "Available" and row["error"] is None


def test_controller_killed_with_a_vm_running_leaves_the_vm_and_agents_resynchronise(
        built: Built) -> None:
    assert wait_until(lambda: _converged(built), 20) is not None
    agents = {h: built.agent(h) for h in HOSTS}
    vm = manage.create(built.inv.read(), built.name, "rec01", "h1", 8 * MiB, 1 * MiB)
    try:
        (ctl,) = lab_pids(paths.CONTROLLER_MARKER, built.name)
        os.kill(ctl, signal.SIGKILL)
        assert wait_until(lambda: not alive(ctl), 5) is not None
        assert alive(vm.pid)
        result = lifecycle.status(built.inv)
        assert result.stopped == ["controller"]
        lifecycle.repair(built.inv, result)  # what `lab status --repair` runs
        assert wait_until(lambda: _converged(built), SETTLED) is not None
        assert {h: built.agent(h) for h in HOSTS} == agents  # no agent restarted
        assert manage.get(built.name, "rec01").pid == vm.pid and alive(vm.pid)
        assert manage.status(built.name, "rec01")["running"]
    finally:
        manage.destroy(built.name, "rec01")


# -- (d) agents killed during a vMotion and during a cold migration ----------------------------


@dataclass
class Engines:
    name: str
    store: Path
    inv: Inventory
    stores: Datastores

    def agent(self, host: str) -> int:
        return Built(self.name, self.store, self.inv).agent(host)

    def restart_agents(self, killed: list[int]) -> None:
        assert wait_until(lambda: not any(alive(p) for p in killed), 5) is not None
        mgmt.start(self.name, self.inv.read(), str(self.store))
        b = Built(self.name, self.store, self.inv)
        assert wait_until(lambda: all(r["condition"] == "Available" and r["desiredGeneration"]
                                      == r["realisedGeneration"]
                                      for r in b.status().values()), SETTLED) is not None

    def vm_rows(self, vm: str) -> list[tuple[str, int]]:
        """(host, pid) of every process registered for `vm` by any host's agent."""
        client = ControllerClient(self.name)
        return [(h, int(r["pid"])) for h in sorted(self.inv.read().hosts)
                for r in client.call("process.list", {"host": h})[0]["processes"]
                if r["kind"] == "vm" and r["name"] == vm]


@pytest.fixture(scope="module")
def engines(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engines]:
    """The vMotion kernel tests' 5-host lab, with a datastore on esx01 and esx02."""
    folder = tmp_path_factory.mktemp("engines")
    (folder / "lab.yaml").write_text(VMOTION_LAB, encoding="utf-8")
    inv = Inventory.open(folder / "inventory.db")
    name = f"t{os.getpid()}-h13e"
    stores = Datastores(folder / "datastores")
    try:
        assert lifecycle.up(inv, folder / "lab.yaml", name).management is not None
        yield Engines(name, folder / "inventory.db", inv, stores)
    finally:
        for rec in manage.records(name):
            manage.destroy(name, rec.name)
        lifecycle.down(inv, name)
    assert vm_processes(name) == [], "a VM process survived lab down"


def _in_thread(work: Callable[[], Any]) -> tuple[threading.Thread, dict[str, Any]]:
    out: dict[str, Any] = {}

    def run() -> None:
        try:
            out["result"] = work()
        except BaseException as err:  # the test looks at it
            out["error"] = err

    t = threading.Thread(target=run)
    t.start()
    return t, out


def test_agents_killed_during_a_vmotion_the_vm_runs_exactly_once(engines: Engines) -> None:
    dc = engines.inv.read()
    rec = manage.create(dc, engines.name, "rec02", "esx01", 48 << 20, 2_000_000)
    wait_writes(engines.name, "rec02", 0)
    rounds: list[int] = []
    worker, out = _in_thread(lambda: migrate(
        dc, engines.name, "rec02", "esx02", rate_limit=8e6,
        progress=lambda e: rounds.append(1) if e["event"] == "round" else None))
    try:
        assert wait_until(lambda: bool(rounds) or not worker.is_alive(), 30) is not None
        assert worker.is_alive(), f"the migration ended before the kill point: {out}"
        killed = [engines.agent(h) for h in ("esx01", "esx02")]
        for pid in killed:
            os.kill(pid, signal.SIGKILL)
    finally:
        worker.join(90)
    assert not worker.is_alive()
    engines.restart_agents(killed)
    report = out.get("result")
    moved = manage.get(engines.name, "rec02")
    print(f"\nvMotion, both agents killed -9 after the first round: "
          f"{'completed' if report is not None and report.completed else 'aborted'} "
          f"({getattr(report, 'reason', None) or out.get('error')}); VM on {moved.host}")
    live = vm_processes(engines.name)
    assert live == [moved.pid], (live, moved, out)
    if report is not None and report.completed:
        assert moved.host == "esx02" and moved.pid == report.target_pid
    else:
        assert (moved.host, moved.pid) == ("esx01", rec.pid), out
    assert engines.vm_rows("rec02") == [(moved.host, moved.pid)]  # one agent holds it
    wait_writes(engines.name, "rec02", int(manage.status(engines.name, "rec02")["writes"]))
    manage.destroy(engines.name, "rec02")


def test_agent_killed_during_a_cold_migration_files_intact_vm_runs_once(
        engines: Engines) -> None:
    dc = engines.inv.read()
    p = files.create(dc, engines.name, "rec03", "esx01", disk=64 << 20, memory=8 << 20,
                     dirty_rate=1_000_000, disk_data=16 << 20, stores=engines.stores)
    before = {f.name: _digest(f) for f in sorted(files.vm_dir(p).iterdir())}
    copied: list[int] = []
    worker, out = _in_thread(lambda: cold.migrate(
        dc, engines.name, "rec03", "esx02", bandwidth_limit=4e6,
        progress=lambda done, total, f: copied.append(done)))
    try:
        assert wait_until(lambda: bool(copied) or not worker.is_alive(), 30) is not None
        assert worker.is_alive(), f"the copy ended before the kill point: {out}"
        killed = [engines.agent("esx02")]
        os.kill(killed[0], signal.SIGKILL)  # the target's, mid-copy
    finally:
        worker.join(120)
    assert not worker.is_alive()
    engines.restart_agents(killed)
    where = placement.load(engines.name, "rec03")
    print(f"\ncold migration, target agent killed -9 mid-copy: "
          f"{'failed: ' + str(out['error']) if 'error' in out else 'completed'}; "
          f"files on {where.host}")
    if "error" in out:
        assert where.host == "esx01", out  # a broken copy leaves the source as it was
    else:
        assert where.host == "esx02" and not files.vm_dir(p).exists()
    assert {f.name: _digest(f) for f in sorted(files.vm_dir(where).iterdir())} == before
    rec = files.power_on(dc, engines.name, "rec03")
    assert rec.host == where.host and vm_processes(engines.name) == [rec.pid]
    assert engines.vm_rows("rec03") == [(where.host, rec.pid)]
    files.power_off(engines.name, "rec03")


def _digest(path: Path) -> str:
    h = hashlib.blake2b()
    with open(path, "rb") as f:
        while chunk := f.read(4 << 20):
            h.update(chunk)
    return h.hexdigest()
