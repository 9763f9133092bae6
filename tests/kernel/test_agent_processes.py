"""Every process of a host is its agent's child: a vMotion's incoming VM and a copy's NFC server.

One lab with a controller (vmotionkit's: esx01 and esx02 with two vMotion adapters each,
provisioning falls back to management, PATH-2). For each process: its parent is the
host's agent (/proc/<pid>/stat), it is in that agent's `process.list` only, it is
stopped on an abort and at its end, and after `kill -9` of the agent `lab status
--repair` adopts what runs and starts nothing twice.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from kernelkit import wait_until
from labkit import agent_pid, lab_name
from vmotionkit import VMOTION_LAB, vm_processes

from vmknet.controller.client import ControllerClient
from vmknet.dataplane import naming
from vmknet.dataplane.linux import netns
from vmknet.errors import DataplaneError, VmknetError
from vmknet.inventory import Inventory
from vmknet.lab import lifecycle
from vmknet.model import Datacenter
from vmknet.nfc import Datastores
from vmknet.processes import alive, parent
from vmknet.provision import cold, files
from vmknet.supervise import scan
from vmknet.trust.issuer import issuer_for
from vmknet.vm import manage
from vmknet.vmotion import orchestrate

MiB = 1 << 20
ESX02_VMK1 = "198.18.4.12"  # esx02's first vMotion adapter
ESX01_VMK1 = "198.18.4.11"


@dataclass
class Env:
    name: str
    store: Path
    inv: Inventory
    stores: Datastores

    @property
    def dc(self) -> Datacenter:
        return self.inv.read()

    def agent(self, host: str) -> int:
        return agent_pid(self.name, host)

    def listing(self, host: str) -> dict[str, Any]:
        (got,) = ControllerClient(self.name).call("process.list", {"host": host})
        return dict(got)

    def rows(self, host: str) -> list[tuple[str, str, int, bool]]:
        return [(r["kind"], r["name"], r["pid"], r["child"])
                for r in self.listing(host)["processes"]]


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    folder = tmp_path_factory.mktemp("agentproc")
    (folder / "lab.yaml").write_text(VMOTION_LAB, encoding="utf-8")
    inv = Inventory.open(folder / "inventory.db")
    name = lab_name()
    try:
        assert lifecycle.up(inv, folder / "lab.yaml", name).management is not None
        yield Env(name, folder / "inventory.db", inv, Datastores(folder / "datastores"))
    finally:
        for rec in manage.records(name):
            manage.destroy(name, rec.name)
        lifecycle.down(inv, name)
    assert scan.scan(name) == [], "lab down left a process of the lab"


def _dial(env: Env, address: str, port: int) -> bool:
    """Whether a TCP connect from esx01's vmotion stack to address:port is accepted."""
    ns = naming.stack_ns(env.name, "esx01", "vmotion")
    sock = netns.in_netns(ns, lambda: socket.socket(socket.AF_INET, socket.SOCK_STREAM))
    with sock:
        sock.settimeout(2.0)
        try:
            sock.connect((address, port))
        except OSError:
            return False
    return True


def _named(lab: str, vm: str) -> list[int]:
    return [p for p in vm_processes(lab)
            if f"--name={vm}".encode() in Path(f"/proc/{p}/cmdline").read_bytes().split(b"\0")]


# ------------------------------------------------------------------ the incoming VM


def test_incoming_vm_is_the_target_agents_child_and_stays_it_as_the_vm(
        env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    src = manage.create(env.dc, env.name, "mv01", "esx01", 16 * MiB, 2 * MiB)
    seen: dict[str, Any] = {}
    real = orchestrate.spawn

    def spawn(*args: Any, **kw: Any) -> int:
        pid = real(*args, **kw)
        seen.update(pid=pid, ppid=parent(pid), esx02=env.rows("esx02"),
                    esx01=env.rows("esx01"), listening=_dial(env, ESX02_VMK1, 8000))
        return pid

    monkeypatch.setattr(orchestrate, "spawn", spawn)
    report = orchestrate.migrate(env.dc, env.name, "mv01", "esx02")
    assert report.completed, report.reason
    # While it received: the agent of esx02 was its parent and listed it; esx01's did not.
    assert seen["ppid"] == env.agent("esx02")
    assert seen["esx02"] == [("incoming", "mv01", seen["pid"], True)]
    assert seen["esx01"] == [("vm", "mv01", src.pid, True)]
    assert seen["listening"], "the incoming VM listened before the source connected"
    # After the switchover: the same process is the VM, still the agent's child.
    moved = manage.get(env.name, "mv01")
    assert moved.host == "esx02" and moved.pid == report.target_pid == seen["pid"]
    assert parent(moved.pid) == env.agent("esx02")
    assert env.rows("esx02") == [("vm", "mv01", moved.pid, True)]
    assert wait_until(lambda: env.rows("esx01") == [], 3) is not None
    assert env.listing("esx01")["died"] == [] and env.listing("esx02")["died"] == []
    assert _named(env.name, "mv01") == [moved.pid]


def test_abort_stops_the_incoming_vm_and_closes_its_listeners(
        env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    src = manage.create(env.dc, env.name, "mv02", "esx01", 8 * MiB, 0)
    seen: dict[str, Any] = {}
    real = orchestrate.spawn

    def spawn(*args: Any, **kw: Any) -> int:
        seen["pid"] = real(*args, **kw)
        seen["listening"] = _dial(env, ESX02_VMK1, 8000)
        return int(seen["pid"])

    def broken(*_args: Any, **_kw: Any) -> Any:
        raise DataplaneError("Cannot connect: a pair is down (test)", code="DataplaneError")

    monkeypatch.setattr(orchestrate, "spawn", spawn)
    monkeypatch.setattr(orchestrate, "connect", broken)
    with pytest.raises(DataplaneError):
        orchestrate.migrate(env.dc, env.name, "mv02", "esx02")
    assert seen["listening"]
    assert not alive(seen["pid"]), "the agent stopped the incoming VM"
    # Its threads may still be exiting after the leader is a zombie: the files go last.
    assert wait_until(lambda: not _dial(env, ESX02_VMK1, 8000), 3) is not None, \
        "its listeners closed with it"
    assert ("incoming", "mv02") not in {r[:2] for r in env.rows("esx02")}
    assert env.listing("esx02")["died"] == []  # asked to stop: not a death
    assert manage.get(env.name, "mv02") == src and _named(env.name, "mv02") == [src.pid]
    manage.destroy(env.name, "mv02")


def _incoming(ticket: str, address: str = ESX02_VMK1) -> dict[str, Any]:
    return {"ticket": ticket, "vmotion": [{"stack": "vmotion", "address": address}],
            "management": [{"stack": "defaultTcpipStack", "address": "198.18.0.12"}]}


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


def _past_the_controller(env: Env, request: dict[str, Any]) -> str:
    """esx02's agent's answer to a request that skipped the controller's checks."""
    out = subprocess.run(["ip", "netns", "exec", naming.controller_ns(env.name),
                          sys.executable, "-c", AGENT_CALL, env.name, str(env.store),
                          json.dumps(request)], capture_output=True, text=True, check=True)
    return out.stdout.strip()


def test_incoming_vm_only_with_its_ticket_on_its_hosts_adapters(env: Env) -> None:
    before = scan.scan(env.name)
    issuer = issuer_for(env.name)
    good = issuer.issue("vmotion", "esx01", "esx02").id
    cases = [
        ("0" * 32, ESX02_VMK1, "SEC-4"),  # no such ticket in esx02's book
        (issuer.issue("vmotion", "esx01", "esx03").id, ESX02_VMK1, "SEC-4"),  # esx03's
        (issuer.issue("nfc", "esx01", "esx02").id, ESX02_VMK1, "SEC-4"),  # another kind
        (good, ESX01_VMK1, "SEC-2"),  # another host's adapter: the controller checks
        (good, "198.18.0.12", "SEC-2"),  # a management address on the vMotion listeners
    ]
    for ticket, address, code in cases:
        with pytest.raises(VmknetError) as err:
            ControllerClient(env.name).call("process.start", {
                "host": "esx02", "kind": "incoming", "name": "ghost",
                "args": _incoming(ticket, address)})
        assert err.value.code == code, (ticket, address, err.value)
    # The agent checks by itself too: esx01's address is no adapter of esx02's stacks.
    request = {"kind": "incoming", "name": "ghost", "args": _incoming(good, ESX01_VMK1)}
    assert _past_the_controller(env, request) == "DataplaneError"
    request["args"] = _incoming("0" * 32)
    assert _past_the_controller(env, request) == "SEC-4"
    assert scan.scan(env.name) == before
    assert not _dial(env, ESX02_VMK1, 8000)


def test_agent_killed_after_the_switchover_adopts_the_vm_once(env: Env) -> None:
    vm = manage.get(env.name, "mv01")  # the first test's VM, now esx02's
    agent = env.agent("esx02")
    assert parent(vm.pid) == agent
    os.kill(agent, signal.SIGKILL)
    assert wait_until(lambda: not alive(agent), 3) is not None
    assert alive(vm.pid)
    state = lifecycle.status(env.inv)
    assert "agent of esx02" in state.stopped
    lifecycle.repair(env.inv, state)
    assert env.rows("esx02") == [("vm", "mv01", vm.pid, False)]  # adopted, not restarted
    assert _named(env.name, "mv01") == [vm.pid]
    # The VM still migrates back: esx01's agent starts the incoming VM, esx02's stops nothing.
    report = orchestrate.migrate(env.dc, env.name, "mv01", "esx01")
    assert report.completed and report.target_pid is not None, report.reason
    assert parent(report.target_pid) == env.agent("esx01")
    assert env.rows("esx01") == [("vm", "mv01", report.target_pid, True)]
    assert wait_until(lambda: env.rows("esx02") == [], 3) is not None
    assert _named(env.name, "mv01") == [report.target_pid]
    manage.destroy(env.name, "mv01")
    assert wait_until(lambda: env.rows("esx01") == [], 3) is not None


def test_agent_killed_during_a_migration_adopts_the_new_vm_once(
        env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    """The target's agent dies with -9 right after it started the incoming VM: the VM
    still arrives (its own session), and the restarted agent adopts it as the VM."""
    manage.create(env.dc, env.name, "mv03", "esx01", 8 * MiB, 1 * MiB)
    killed: list[int] = []
    real = orchestrate.spawn

    def spawn(*args: Any, **kw: Any) -> int:
        pid = real(*args, **kw)
        killed.append(env.agent("esx02"))
        os.kill(killed[0], signal.SIGKILL)
        return pid

    monkeypatch.setattr(orchestrate, "spawn", spawn)
    report = orchestrate.migrate(env.dc, env.name, "mv03", "esx02")
    assert report.completed and report.target_pid is not None, report.reason
    assert not alive(killed[0])
    state = lifecycle.status(env.inv)
    assert "agent of esx02" in state.stopped
    lifecycle.repair(env.inv, state)
    # Found by /proc as an incoming VM's command line, listed as what it is now: the VM.
    assert env.rows("esx02") == [("vm", "mv03", report.target_pid, False)]
    assert _named(env.name, "mv03") == [report.target_pid]
    manage.destroy(env.name, "mv03")
    assert wait_until(lambda: env.rows("esx02") == [], 3) is not None


# ------------------------------------------------------------------ the copy's NFC server


def _nfc(env: Env) -> list[tuple[str, int]]:
    return [(r.host, r.pid) for r in scan.find(env.name, kind="nfc")]


def test_copy_nfc_server_is_the_target_agents_child_for_the_copy(env: Env) -> None:
    files.create(env.dc, env.name, "cv01", "esx01", disk=16 * MiB, memory=8 * MiB,
                 dirty_rate=0, disk_data=4 * MiB, stores=env.stores)
    seen: list[dict[str, Any]] = []

    def during(_done: int, _total: int, _file: str) -> None:
        if not seen:
            ((host, pid),) = _nfc(env)
            seen.append({"host": host, "pid": pid, "ppid": parent(pid),
                         "esx02": env.rows("esx02"), "esx01": env.rows("esx01")})

    report = cold.migrate(env.dc, env.name, "cv01", "esx02", progress=during)
    assert report.completed
    (s,) = seen
    assert s["host"] == "esx02" and s["ppid"] == env.agent("esx02")
    assert s["esx02"] == [("nfc", "esx02", s["pid"], True)]
    assert ("nfc", "esx02") not in {r[:2] for r in s["esx01"]}
    assert not alive(s["pid"]) and _nfc(env) == [], "the server ends with the copy"
    assert env.rows("esx02") == [] and env.listing("esx02")["died"] == []

    # A clone back: esx01's agent runs the server this time.
    seen.clear()
    cold.clone(env.dc, env.name, "cv01", "esx01", "cv02", progress=during)
    assert seen[0]["host"] == "esx01" and seen[0]["ppid"] == env.agent("esx01")
    assert _nfc(env) == [] and env.listing("esx01")["died"] == []


def test_failed_copy_stops_the_nfc_server(env: Env) -> None:
    seen: list[int] = []

    def fail(_done: int, _total: int, _file: str) -> None:
        seen.extend(pid for _, pid in _nfc(env))
        raise RuntimeError("the copy fails here (test)")

    with pytest.raises(RuntimeError):
        cold.clone(env.dc, env.name, "cv01", "esx01", "cv03", progress=fail)
    assert seen and not any(alive(p) for p in seen)
    assert _nfc(env) == [] and env.rows("esx01") == []
    assert env.listing("esx01")["died"] == []


def test_agent_killed_during_a_copy_leaves_no_server(env: Env) -> None:
    killed: list[int] = []

    def kill_agent(_done: int, _total: int, _file: str) -> None:
        if not killed:
            killed.append(env.agent("esx02"))
            os.kill(killed[0], signal.SIGKILL)

    # The next file's ticket cannot reach esx02's book: the copy fails (as without this
    # change); its server, the dead agent's orphan now, must not outlive it.
    with pytest.raises(VmknetError) as err:
        cold.clone(env.dc, env.name, "cv02", "esx02", "cv04", progress=kill_agent)
    assert "agent of esx02" in str(err.value)
    assert _nfc(env) == [], "the copy stopped the server its dead agent could not"
    state = lifecycle.status(env.inv)
    assert "agent of esx02" in state.stopped
    lifecycle.repair(env.inv, state)
    assert env.agent("esx02") != killed[0]
    assert ("nfc", "esx02") not in {r[:2] for r in env.rows("esx02")}
    assert _nfc(env) == []
    # The next copy gets a fresh server from the new agent, and only one.
    seen: list[list[tuple[str, int]]] = []

    def during(_done: int, _total: int, _file: str) -> None:
        if not seen:
            seen.append(_nfc(env))

    cold.clone(env.dc, env.name, "cv02", "esx02", "cv05", progress=during)
    ((host, pid),) = seen[0]
    assert host == "esx02" and not alive(pid) and _nfc(env) == []
