"""Fault Tolerance in a lab with a controller: FT-2 decided by the controller's arbiter.

The link-only split (one side frozen by SIGSTOP), both ways, through the controller's
`ft.arbiter` (controller/arbiter.py): exactly one side goes on, the decision is the
controller's, and it is an event in the inventory's log (`vmknet events`). The side
that went on is re-protected by itself: a new secondary on the third FT host
(ft/reprotect.py); after failovers twice in a row, with the output stream going on.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from ftkit import lab_yaml, wait_for
from labkit import agent_pid, lab_name
from traffickit import wait_path
from vmotionkit import vm_processes, wait_writes

from vmknet.cli.main import main
from vmknet.controller.client import ControllerClient
from vmknet.dataplane.naming import adapter_ifname
from vmknet.errors import RuleViolation
from vmknet.ft import arbiter, enable, records
from vmknet.inventory import Inventory
from vmknet.lab import lifecycle
from vmknet.model import DEFAULT_STACK, Datacenter
from vmknet.processes import parent, terminate
from vmknet.traffic.place import stack_ns
from vmknet.vm import manage, registry
from vmknet.vm.memory import GuestMemory, Workload

MEMORY = 16 << 20
RATE = 10_000_000
TIMEOUT = 3.0  # s without a checkpoint / ACK: the link is lost (generous: 2 busy cores)
BOUND = 30.0  # s any outcome may take on a loaded machine
LAB = lab_yaml([("esx01", 11, "198.18.16.11", 50), ("esx02", 12, "198.18.16.12", 50),
                ("esx03", 13, "198.18.16.13", 50)], controller=True)


@pytest.fixture(scope="module")
def clab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Inventory, str, Path]]:
    folder = tmp_path_factory.mktemp("ftc")
    (folder / "lab.yaml").write_text(LAB, encoding="utf-8")
    inv = Inventory.open(folder / "inventory.db")
    name = lab_name()
    try:
        lifecycle.up(inv, folder / "lab.yaml", name)
        wait_path(name, "esx01", DEFAULT_STACK, "198.18.16.12")
        wait_path(name, "esx02", DEFAULT_STACK, "198.18.16.13")
        assert arbiter.on_controller(name) and ControllerClient(name).running()
        yield inv, name, folder / "inventory.db"
    finally:
        lifecycle.down(inv, name)
        assert vm_processes(name) == [], "a VM process survived lab down"


@pytest.fixture
def env(clab: tuple[Inventory, str, Path]) -> Iterator[tuple[Datacenter, str, Inventory]]:
    inv, name, _ = clab
    yield inv.read(), name, inv
    # Not reaper.kill_lab_vms: it removes the lab's whole run folder, the controller's door too
    terminate(registry.vm_pids(name))
    for folder in (registry.vms_dir(name), records.ft_dir(name)):
        shutil.rmtree(folder, ignore_errors=True)
    assert vm_processes(name) == []


def _events(inv: Inventory, vm: str) -> list[str]:
    """The inventory's FT events of `vm`, oldest first: their kinds (FtFailover, ...)."""
    return [e.message.split(":")[0] for e in inv.events(200)
            if e.path == f"vms/{vm}" and e.rule.startswith("FT-")]


def _runs(lab: str, vm: str, pid: int) -> registry.VmRecord | None:
    try:
        rec = registry.load(lab, vm)
    except Exception:
        return None
    return rec if rec.pid == pid else None


def test_link_only_secondary_frozen_the_controller_lets_the_primary_on(
        env: tuple[Datacenter, str, Inventory]) -> None:
    dc, lab, inv = env
    rec = manage.create(dc, lab, "web11", "esx01", MEMORY, RATE)
    ft = enable.ft_on(dc, lab, "web11", "esx02", timeout=TIMEOUT)
    os.kill(ft.secondary_pid, signal.SIGSTOP)
    try:
        wait_for("the primary wins the controller's arbiter",
                 lambda: arbiter.winner(lab, ft.session) == arbiter.PRIMARY, BOUND)
    finally:
        os.kill(ft.secondary_pid, signal.SIGCONT)
    wait_for("the secondary stands down", lambda: not registry.alive(ft.secondary_pid), BOUND)
    assert not (arbiter.ft_dir(lab) / "arbiter" / ft.session).exists(), "the file form decided"
    assert manage.get(lab, "web11").pid == rec.pid
    # the primary runs on and gets a new secondary, not on esx02 (the link to it broke)
    again = wait_for("re-protected on esx03", lambda: _pair(lab, "web11", "esx01", "esx03"),
                     BOUND)
    assert again.primary_pid == rec.pid and again.session != ft.session
    wait_writes(lab, "web11", int(manage.status(lab, "web11")["writes"]))
    assert sorted(vm_processes(lab)) == sorted([rec.pid, again.secondary_pid])
    kinds = wait_for("the decision in vmknet events",
                     lambda: (k := _events(inv, "web11")) and "FtReprotected" in k and k, 10)
    assert kinds == ["FtSecondaryStarted", "FtPrimaryRunsOn", "FtReprotected"]


def test_link_only_primary_frozen_the_controller_lets_the_secondary_on(
        env: tuple[Datacenter, str, Inventory]) -> None:
    dc, lab, inv = env
    rec = manage.create(dc, lab, "web12", "esx01", MEMORY, RATE)
    ft = enable.ft_on(dc, lab, "web12", "esx02", timeout=TIMEOUT)
    os.kill(rec.pid, signal.SIGSTOP)
    try:
        wait_for("the secondary runs the VM", lambda: _runs(lab, "web12", ft.secondary_pid),
                 BOUND)
    finally:
        os.kill(rec.pid, signal.SIGCONT)
    wait_for("the old primary stops", lambda: not registry.alive(rec.pid), BOUND)
    assert arbiter.winner(lab, ft.session) == arbiter.SECONDARY
    decided = arbiter.ft_dir(lab) / "arbiter" / ft.session
    assert not decided.exists(), (decided.read_text(), records.events(lab, "web12"),
                                  ControllerClient(lab).running(), arbiter.on_controller(lab))
    assert manage.get(lab, "web12").pid == ft.secondary_pid
    assert {e["event"] for e in records.events(lab, "web12")} >= {"failover", "stood-down"}
    assert "FtFailover" in wait_for("the failover in vmknet events",
                                    lambda: _events(inv, "web12"), 10)


def test_failover_reprotects_by_itself_twice(clab: tuple[Inventory, str, Path],
                                             env: tuple[Datacenter, str, Inventory]) -> None:
    dc, lab, inv = env
    rec = manage.create(dc, lab, "app11", "esx01", MEMORY, RATE)
    first = enable.ft_on(dc, lab, "app11", "esx02", timeout=TIMEOUT, output_port=9110)
    wait_for("checkpoints", lambda: enable.ft_status(lab, "app11")["primary_ft"]["checkpoints"]
             >= 5, BOUND)
    os.kill(rec.pid, signal.SIGKILL)  # the primary's host "fails"
    t = time.monotonic()
    second = wait_for("re-protected on esx03", lambda: _pair(lab, "app11", "esx02", "esx03"),
                      BOUND)
    took = time.monotonic() - t
    assert second.primary_pid == first.secondary_pid and registry.alive(second.secondary_pid)
    assert manage.get(lab, "app11").pid == first.secondary_pid
    # Each secondary is its host's agent's child (kind ft-secondary); the one that went
    # live is listed by its agent as the VM now.
    assert _agent_lists(lab, "esx02", first.secondary_pid) == ("vm", True)
    assert _agent_lists(lab, "esx03", second.secondary_pid) == ("ft-secondary", True)
    assert parent(second.secondary_pid) == agent_pid(lab, "esx03")
    print(f"\nre-protection: kill -9 to a new secondary in step on esx03 in {took:.1f} s")
    kinds = wait_for("the events", lambda: (k := _events(inv, "app11")) and
                     "FtReprotected" in k and k, 10)
    assert kinds == ["FtSecondaryStarted", "FtFailover", "FtReprotected"], kinds
    released = enable.ft_status(lab, "app11")["primary_ft"]["output_released"]
    wait_for("output released under the new pair's checkpoints", lambda: enable.ft_status(
        lab, "app11")["primary_ft"]["output_released"] > released + 50, BOUND)
    code, out = _cli(clab[2], "vm", "ft", "status", "app11")
    assert code == 0 and "protected, primary on esx02, secondary on esx03" in out, out
    # and again: esx02's VM process dies, esx03 goes live, esx01 (its host is up) takes over
    os.kill(second.primary_pid, signal.SIGKILL)
    third = wait_for("re-protected on esx01", lambda: _pair(lab, "app11", "esx03", "esx01"),
                     BOUND)
    assert third.primary_pid == second.secondary_pid
    assert sorted(vm_processes(lab)) == sorted([third.primary_pid, third.secondary_pid])
    assert wait_for("the events", lambda: (k := _events(inv, "app11")) and
                    k.count("FtReprotected") == 2 and k, 10)[-2:] == ["FtFailover",
                                                                       "FtReprotected"]


def _agent_lists(lab: str, host: str, pid: int) -> tuple[str, bool] | None:
    """(kind, child) of `pid` in `host`'s agent's process.list, or None."""
    got = ControllerClient(lab).call("process.list", {"host": host})[0]
    return next(((r["kind"], r["child"]) for r in got["processes"] if r["pid"] == pid), None)


def _pair(lab: str, vm: str, primary: str, secondary: str) -> records.FtRecord | None:
    """The VM's FT record once it names this pair, protected, with a checkpoint acked."""
    try:
        st = enable.ft_status(lab, vm)
    except Exception:
        return None
    if (st["state"], st["primary"], st["secondary"]) != (records.PROTECTED, primary,
                                                         secondary):
        return None
    if not (st["primary_ft"] or {}).get("checkpoints"):
        return None
    return records.load(lab, vm)


def _cli(store: Path, *args: str) -> tuple[int, str]:
    got = CliRunner().invoke(main, ["--store", str(store), *args])
    return got.exit_code, got.output


def test_ft_logging_encrypted_no_guest_bytes_on_the_ft_adapter(
        clab: tuple[Inventory, str, Path], env: tuple[Datacenter, str, Inventory]) -> None:
    """SEC-1: a capture of esx01's FT adapter never holds guest memory when the pair is
    sealed; the same capture of a plain pair does (so the capture would see it)."""
    dc, lab, _ = env
    size = 4 << 20
    registry.set_host_encryption(lab, "esx02", False)
    try:
        manage.create(dc, lab, "enc00", "esx01", size, RATE)
        with pytest.raises(RuleViolation) as refused:
            enable.ft_on(dc, lab, "enc00", "esx02", timeout=TIMEOUT, encryption="required")
        assert refused.value.code == "SEC-1" and "esx02" in refused.value.message
        assert not enable.ft_on(dc, lab, "enc00", "esx02", timeout=TIMEOUT).encrypted
        enable.ft_off(lab, "enc00")  # opportunistic fell back to plain: esx02 cannot
    finally:
        registry.set_host_encryption(lab, "esx02", True)
    for mode, sealed in (("required", True), ("disabled", False)):
        vm = f"enc-{mode[:3]}"
        manage.create(dc, lab, vm, "esx01", size, RATE)
        pool = Workload(GuestMemory(size), RATE, int(manage.status(lab, vm)["seed"]))._pool
        marker = bytes(pool[0][64:128])  # content of a fifth of the guest's pages
        pcap = clab[2].parent / f"{vm}.pcap"
        with _capture(stack_ns(lab, "esx01", DEFAULT_STACK), adapter_ifname("vmk2"), pcap):
            ft = enable.ft_on(dc, lab, vm, "esx02", timeout=TIMEOUT, encryption=mode)
            wait_for("checkpoints", lambda vm=vm: enable.ft_status(lab, vm)["primary_ft"][
                "checkpoints"] >= 5, BOUND)
        data = pcap.read_bytes()
        st = enable.ft_status(lab, vm)
        print(f"\nFT encryption {mode}: {len(data) >> 10} KiB captured on esx01/vmk2, "
              f"cipher {st['primary_ft']['cipher']}")
        assert ft.encrypted is sealed and st["secondary_ft"]["encrypted"] is sealed
        assert len(data) > size, "the capture missed the sync round"
        assert (marker in data) is not sealed, f"{mode}: guest memory on the wire"
        enable.ft_off(lab, vm)
        manage.destroy(lab, vm)


@contextlib.contextmanager
def _capture(ns: str, ifname: str, pcap: Path) -> Iterator[None]:
    tcpdump = shutil.which("tcpdump")
    assert tcpdump, "tcpdump is needed (scripts/setup.sh installs it)"
    proc = subprocess.Popen(["ip", "netns", "exec", ns, tcpdump, "-i", ifname, "-U", "-s",
                             "0", "-n", "-w", str(pcap)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    try:
        assert proc.stderr is not None
        started = []
        for _ in range(3):  # "listening on ..." (with -i any, a warning first); EOF: b""
            started.append(proc.stderr.readline())
            if b"listening" in started[-1] or not started[-1]:
                break
        assert b"listening" in started[-1], started
        yield
        time.sleep(0.5)  # -U: what was captured is written out
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(10)
