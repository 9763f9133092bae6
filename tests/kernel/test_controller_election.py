"""Two controllers of one lab on a real etcd: one elected, a standby that takes over.

One small lab per module on an etcd store (an etcd started for the session, as the
store tests do), brought up with `--controllers 2`: the leader serves, the standby
waits. Killed with -9, the leader's lease lapses and the standby serves within the
TTL and a bound; the agents heartbeat to it, a change reaches them and a running VM
goes on undisturbed. SIGTERM hands over at once. A leader cut off from etcd exits
before its lease can lapse (fencing). An agent stopped with SIGSTOP loses its alive
key within the bound of controller/leases.py and host status says disconnected.
"""

from __future__ import annotations

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
from click.testing import CliRunner
from kernelkit import wait_until
from labkit import agent_pid, lab_name, write_small_lab

from vmknet.cli.main import main
from vmknet.controller import lab as mgmt
from vmknet.controller.client import ControllerClient
from vmknet.controller.leases import HEARTBEAT_S
from vmknet.dataplane import naming
from vmknet.errors import VmknetError
from vmknet.inventory import Inventory
from vmknet.lab import lifecycle
from vmknet.mgmt import paths
from vmknet.processes import alive, cmdlines, lab_pids
from vmknet.store.coordination import LEADER_KEY
from vmknet.store.etcd_client import Etcd, parse
from vmknet.store.hosts import HostStates
from vmknet.vm import manage

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "unit"))
import test_store_contract as contract  # the store tests' etcd: one way to start it

etcd_server = contract.etcd_server
TTL = 3  # s, the controllers' and the agents' leases
TAKEOVER_BOUND = 4.0  # s beyond one TTL: the standby's poll, binding, the agents' reconnect
KEY_BOUND = HEARTBEAT_S + 2 * TTL / 3 + TTL + 1.0  # leases.py's bound, and a margin
HOSTS = ["h1", "h2"]
MiB = 1 << 20


@dataclass
class Built:
    name: str
    store: str
    inv: Inventory

    @property
    def etcd(self) -> Etcd:
        return Etcd(parse(self.store))

    def leader(self) -> tuple[str | None, int | None]:
        """(the leader key's candidate, the pid that answers on api.sock)."""
        seen = mgmt.controllers(self.name, self.store)
        return seen.leader, seen.leader_pid

    def status(self) -> dict[str, dict[str, Any]]:
        return {r["host"]: r for r in ControllerClient(self.name, timeout=5).host_status()}

    def serving(self) -> bool:
        return ControllerClient(self.name, timeout=2).running()

    def all_available(self) -> bool:
        try:
            rows = self.status()
        except VmknetError:  # between leaders: not yet
            return False
        return all(rows[h]["condition"] == "Available" for h in HOSTS)

    def log(self) -> str:
        """The controllers' log (both append to it): for a failing assertion's message."""
        path = paths.controller_dir(self.name).parent / "controller.log"
        return path.read_text(errors="replace")[-3000:] if path.exists() else ""

    def agent(self, host: str) -> int:
        return agent_pid(self.name, host)

    def cli(self, *args: str) -> Any:
        return CliRunner().invoke(main, ["--store", self.store, *args])


@pytest.fixture(scope="module")
def built(etcd_server: contract.EtcdServer,
          tmp_path_factory: pytest.TempPathFactory) -> Iterator[Built]:
    name = lab_name()
    store = etcd_server.store_url(f"election-{name}")
    inv = Inventory.open(store)
    lab_file = write_small_lab(tmp_path_factory.mktemp("election"))
    try:
        report = lifecycle.up(inv, lab_file, name, controllers=2, lease_ttl=TTL)
        assert report.management is not None
        assert all(r["connected"] for r in report.management.hosts)
        yield Built(name, store, inv)
    finally:
        lifecycle.down(inv, name)
    assert not lab_pids(paths.AGENT_MARKER, name), "lab down left an agent running"
    assert not lab_pids(paths.CONTROLLER_MARKER, name), "lab down left a controller running"


def _restore_standby(b: Built) -> None:
    if len(lab_pids(paths.CONTROLLER_MARKER, b.name)) < 2:
        mgmt.start(b.name, b.inv.read(), b.store)
    assert len(lab_pids(paths.CONTROLLER_MARKER, b.name)) == 2
    assert wait_until(b.all_available, 10) is not None
    # and every agent's alive key (regranted by the leader's keeper if it lapsed meanwhile)
    assert wait_until(lambda: HostStates(parse(b.store)).alive() == HOSTS, TTL + 2) is not None


def test_two_controllers_one_leads_and_status_says_which(built: Built) -> None:
    pids = sorted(lab_pids(paths.CONTROLLER_MARKER, built.name))
    assert len(pids) == 2
    leader, serving = built.leader()
    assert leader is not None and serving in pids
    assert leader.endswith(f":{serving}")
    standby = next(p for p in pids if p != serving)
    # Only the leader has doors: one listener on the controller's address:443.
    out = subprocess.run(["ip", "netns", "exec", naming.controller_ns(built.name), "ss",
                          "-Htlnp"], capture_output=True, text=True, check=True).stdout
    assert f"pid={serving}," in out and f"pid={standby}," not in out
    result = built.cli("lab", "status")
    assert result.exit_code == 0, result.output
    assert (f"Controllers: 2 of 2 running; leader {leader}, serving as pid {serving}; "
            f"standby pid {standby}") in result.output
    # Each agent's alive key, from the keeper's first round after its first heartbeat.
    assert wait_until(lambda: HostStates(parse(built.store)).alive() == HOSTS, TTL) is not None


def test_leader_killed_the_standby_takes_over_and_a_vm_runs_on(built: Built) -> None:
    vm = manage.create(built.inv.read(), built.name, "web01", "h1", 8 * MiB, 1 * MiB)
    agents = sorted(lab_pids(paths.AGENT_MARKER, built.name))
    old_leader, old_pid = built.leader()
    assert old_pid is not None
    os.kill(old_pid, signal.SIGKILL)
    killed = time.monotonic()
    assert wait_until(lambda: not alive(old_pid), 3) is not None
    assert wait_until(built.serving, TTL + TAKEOVER_BOUND) is not None, built.log()
    took = time.monotonic() - killed
    new_leader, new_pid = built.leader()
    assert new_leader != old_leader and new_pid not in (None, old_pid)
    assert took <= TTL + TAKEOVER_BOUND
    # The agents reconnect by themselves (nobody restarted them) and are Available.
    assert wait_until(built.all_available, 10) is not None
    assert sorted(lab_pids(paths.AGENT_MARKER, built.name)) == agents
    result = built.cli("host", "status")
    assert result.exit_code == 0 and result.output.count("Available") == 2, result.output
    # A change made afterwards reaches the hosts through the new leader's agents.
    result = built.cli("esxcli", "-H", "h2", "network", "ip", "interface", "set", "-i", "vmk1",
                       "-m", "1400")
    assert result.exit_code == 0, result.output
    ns = naming.stack_ns(built.name, "h2", "defaultTcpipStack")
    assert "mtu 1400" in subprocess.run(["ip", "netns", "exec", ns, "ip", "link", "show",
                                         "vmk1"], capture_output=True, text=True).stdout
    # The VM was not disturbed: the same process, its memory as it was, still running.
    assert alive(vm.pid) and manage.get(built.name, "web01").pid == vm.pid
    assert manage.status(built.name, "web01")["running"]
    result = built.cli("lab", "status")
    assert result.exit_code == 1 and "not running: the standby controller" in result.output
    _restore_standby(built)  # what `lab status --repair` does
    manage.destroy(built.name, "web01")


def test_sigterm_hands_over_at_once(built: Built) -> None:
    _, pid = built.leader()
    assert pid is not None
    os.kill(pid, signal.SIGTERM)
    stopped = time.monotonic()
    assert wait_until(lambda: not alive(pid), 5) is not None
    assert wait_until(built.serving, 3) is not None, built.log()
    assert time.monotonic() - stopped < TTL  # resigned: no lease to wait out
    assert built.leader()[1] not in (None, pid)
    _restore_standby(built)


def test_a_leader_cut_off_from_etcd_stops_serving(built: Built,
                                                  etcd_server: contract.EtcdServer) -> None:
    etcd_pid = next(p for p in contract_pids(etcd_server))
    _, pid = built.leader()
    assert pid is not None
    os.kill(etcd_pid, signal.SIGSTOP)
    try:
        # Fenced before its lease can lapse: the process is gone within one TTL.
        assert wait_until(lambda: not alive(pid), TTL + 1) is not None
        assert not built.serving()
    finally:
        os.kill(etcd_pid, signal.SIGCONT)
    log = (paths.controller_dir(built.name).parent / "controller.log").read_text()
    assert "fenced: etcd did not renew" in log
    assert wait_until(built.serving, TTL + TAKEOVER_BOUND) is not None, built.log()
    assert built.leader()[1] not in (None, pid)
    _restore_standby(built)


def contract_pids(server: contract.EtcdServer) -> list[int]:
    """The session etcd's pid (found by its data directory on its command line)."""
    mark = str(server.data_dir).encode()
    return [pid for pid, argv in cmdlines().items()
            if argv[0].endswith(b"etcd") and any(mark in a for a in argv)]


def test_an_agent_that_stops_heartbeating_loses_its_lease(built: Built) -> None:
    agent = built.agent("h2")
    key = "hosts/h2/alive"
    assert built.etcd.get(key) is not None
    os.kill(agent, signal.SIGSTOP)
    stopped = time.monotonic()
    try:
        assert wait_until(lambda: built.etcd.get(key) is None, KEY_BOUND + 1) is not None
        gone = time.monotonic() - stopped
        assert TTL - 0.5 <= gone <= KEY_BOUND
        assert wait_until(lambda: not built.status()["h2"]["connected"], 2) is not None
        assert built.status()["h1"]["connected"]
        result = built.cli("host", "status")
        assert result.exit_code == 0
        assert [line.split()[2] for line in result.output.splitlines()
                if line.startswith("h2 ")] == ["no"]
    finally:
        os.kill(agent, signal.SIGCONT)
    assert wait_until(lambda: built.etcd.get(key) is not None, TTL + 2) is not None
    assert wait_until(built.all_available, 10) is not None


def test_a_new_leader_knows_at_once_which_hosts_are_alive(built: Built) -> None:
    # The leader key and every alive key: the new leader adopts the agents' leases.
    before = {h: built.etcd.get(f"hosts/{h}/alive") for h in HOSTS}
    _, pid = built.leader()
    assert pid is not None
    os.kill(pid, signal.SIGTERM)
    assert wait_until(built.serving, 5) is not None
    rows = built.status()
    assert all(rows[h]["connected"] for h in HOSTS)
    time.sleep(TTL + 1)  # past a TTL: the new leader keeps the same leases alive
    after = {h: built.etcd.get(f"hosts/{h}/alive") for h in HOSTS}
    leases = {h: (kv.lease if kv else None) for h, kv in before.items()}
    assert None not in leases.values()
    assert {h: (kv.lease if kv else None) for h, kv in after.items()} == leases
    assert built.etcd.get(LEADER_KEY) is not None
    _restore_standby(built)
