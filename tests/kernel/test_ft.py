"""Fault Tolerance in the kernel: a primary and a secondary kept in step over the FT adapters.

Refusals (PATH-3 without an FT logging adapter, NoPath, FT-3), checkpoints that cross
exactly the FT logging adapters, failover after kill -9 of the primary (the secondary's
memory is the primary's at the last acknowledged checkpoint), and the link-only split
(one side frozen by SIGSTOP): exactly one side runs on, decided by the arbiter (FT-2).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from ftkit import FT_LAB, wait_for
from labkit import lab_name
from traffickit import wait_path
from vmotionkit import vm_processes, wait_writes

from vmknet.cli.main import main
from vmknet.errors import NoPath, RuleViolation
from vmknet.ft import arbiter, enable, records
from vmknet.ft.output import record
from vmknet.inventory import Inventory
from vmknet.lab import lifecycle
from vmknet.model import DEFAULT_STACK, Datacenter
from vmknet.traffic.place import stack_ns
from vmknet.traffic.sockets import tcp_socket
from vmknet.traffic.stats import adapter_counters
from vmknet.vm import manage, registry
from vmknet.vm.reaper import kill_lab_vms

MEMORY = 16 << 20
RATE = 10_000_000  # 10 MB/s dirtied: the aim
TIMEOUT = 3.0  # s without a checkpoint / ACK: the link is lost (generous: 2 busy cores)
BOUND = 20.0  # s any outcome may take on a loaded machine
OUTPUT_PORT = 9100  # the VM's output stream, on its host's management adapter


@pytest.fixture(scope="module")
def flab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Inventory, str, Path]]:
    folder = tmp_path_factory.mktemp("ft")
    (folder / "lab.yaml").write_text(FT_LAB, encoding="utf-8")
    inv = Inventory.open(folder / "inventory.db")
    name = lab_name()
    try:
        lifecycle.up(inv, folder / "lab.yaml", name)
        wait_path(name, "esx01", DEFAULT_STACK, "198.18.16.12")  # the FT wires forward
        wait_path(name, "esx02", DEFAULT_STACK, "198.18.16.15")
        yield inv, name, folder / "inventory.db"
    finally:
        lifecycle.down(inv, name)
        assert vm_processes(name) == [], "a VM process survived lab down"


@pytest.fixture
def env(flab: tuple[Inventory, str, Path]) -> Iterator[tuple[Datacenter, str]]:
    inv, name, _ = flab
    yield inv.read(), name
    kill_lab_vms(name)
    assert vm_processes(name) == []


def _tx(dc: Datacenter, lab: str, vmk: str) -> int:
    return adapter_counters(dc, lab, "esx01")[vmk].tx_bytes


def test_refusals_before_anything_starts(env: tuple[Datacenter, str]) -> None:
    dc, lab = env
    manage.create(dc, lab, "web01", "esx01", 4 << 20, RATE)
    with pytest.raises(RuleViolation) as no_adapter:
        enable.ft_on(dc, lab, "web01", "esx03")
    assert no_adapter.value.code == "PATH-3" and "esx03" in no_adapter.value.message
    with pytest.raises(NoPath):
        enable.ft_on(dc, lab, "web01", "esx04")
    with pytest.raises(RuleViolation) as same_host:
        enable.ft_on(dc, lab, "web01", "esx01")
    assert same_host.value.code == "FT-1"
    manage.create(dc, lab, "web00", "esx03", 4 << 20, RATE)  # the primary's host lacks one
    with pytest.raises(RuleViolation) as no_primary_adapter:
        enable.ft_on(dc, lab, "web00", "esx02")
    assert no_primary_adapter.value.code == "PATH-3"
    assert "esx03" in no_primary_adapter.value.message
    manage.destroy(lab, "web00")
    assert len(vm_processes(lab)) == 1, "a refused ft on starts no secondary"
    enable.ft_on(dc, lab, "web01", "esx02", vcpus=8, timeout=TIMEOUT)
    manage.create(dc, lab, "web02", "esx02", 4 << 20, RATE)
    with pytest.raises(RuleViolation) as ft3:  # esx02 runs web01's secondary: 8 vCPUs
        enable.ft_on(dc, lab, "web02", "esx01")
    assert ft3.value.code == "FT-3" and "8" in ft3.value.message
    assert len(vm_processes(lab)) == 3  # web01, its secondary, web02: nothing more
    assert [r.vm for r in enable.live_records(lab)] == ["web01"]


def test_checkpoints_cross_only_the_ft_adapters(env: tuple[Datacenter, str]) -> None:
    dc, lab = env
    rec = manage.create(dc, lab, "db01", "esx01", MEMORY, RATE)
    ft0, vmotion0 = _tx(dc, lab, "vmk2"), _tx(dc, lab, "vmk1")
    ft = enable.ft_on(dc, lab, "db01", "esx02", timeout=TIMEOUT)
    assert registry.alive(ft.secondary_pid) and ft.primary == "esx01"
    time.sleep(2.0)
    st = enable.ft_status(lab, "db01")
    p, s = st["primary_ft"], st["secondary_ft"]
    print(f"\nFT {MEMORY >> 20} MiB at {RATE / 1e6:.0f} MB/s: {p['checkpoints_per_s']:.1f} "
          f"checkpoints/s, {p['bytes_per_checkpoint'] / 1e3:.0f} kB each, guest paused "
          f"{p['paused_fraction']:.1%}, lag {p['lag_ms']:.0f} ms")
    assert p["state"] == "protected" and p["checkpoints"] >= 5, p
    assert s["state"] == "protected" and s["last_applied"] >= p["last_acked"], (p, s)
    assert p["adapter"] == "vmk2" and p["peer"] == "vmk2 198.18.16.12"
    sent = _tx(dc, lab, "vmk2") - ft0
    assert sent >= p["sync_bytes"] + p["checkpoints"] * p["bytes_per_checkpoint"] * 0.9
    assert _tx(dc, lab, "vmk1") - vmotion0 < 256 << 10, "checkpoints went over vMotion"
    enable.ft_off(lab, "db01")
    wait_for("the secondary stands down", lambda: not registry.alive(ft.secondary_pid), BOUND)
    assert manage.get(lab, "db01").pid == rec.pid  # the primary runs on
    wait_writes(lab, "db01", int(manage.status(lab, "db01")["writes"]))
    with pytest.raises(Exception, match="not protected"):
        enable.ft_status(lab, "db01")


def test_kill_9_primary_secondary_goes_live_from_last_ack(env: tuple[Datacenter, str]) -> None:
    dc, lab = env
    rec = manage.create(dc, lab, "app01", "esx01", MEMORY, RATE)
    ft = enable.ft_on(dc, lab, "app01", "esx02", timeout=TIMEOUT, verify=True)
    time.sleep(1.0)
    os.kill(rec.pid, signal.SIGKILL)
    t = time.monotonic()
    live = wait_for("the secondary runs the VM", lambda: _runs(lab, "app01", ft.secondary_pid),
                    BOUND)
    took = time.monotonic() - t
    assert live.host == "esx02"
    st = enable.ft_status(lab, "app01")
    got = st["primary_ft"]
    print(f"\nfailover: VM registered on esx02 {took * 1000:.0f} ms after kill -9 "
          f"(live {got['failover_ms']:.0f} ms after the link broke), from checkpoint "
          f"#{got['live_from']}")
    assert st["state"] == records.FAILED_OVER and st["primary"] == "esx02"
    assert st["arbiter"] == arbiter.SECONDARY
    assert [e["event"] for e in st["events"]] == ["failover"]
    logged = records.logged_digests(lab, "app01")
    assert got["live_from"] in logged and got["live_digest"] == logged[got["live_from"]]
    # the last checkpoint taken, or the one before it: taken, but killed before its ACK
    assert max(logged) - got["live_from"] in (0, 1), (max(logged), got["live_from"])
    # device state travels in every checkpoint: the guest's write counter goes on from the
    # primary's at that checkpoint (1 s at 10 MB/s: thousands), it does not start at 0
    writes_then = records.logged_checkpoints(lab, "app01")[got["live_from"]][1]
    assert got["live_writes"] == writes_then > 1000, (got["live_writes"], writes_then)
    wait_writes(lab, "app01", writes_then)  # the guest runs on the secondary, counting on
    assert vm_processes(lab) == [ft.secondary_pid]
    # re-protection, by hand: the new primary gets a secondary on a third host
    again = enable.ft_on(dc, lab, "app01", "esx05", timeout=TIMEOUT)
    assert (again.primary, again.secondary, again.primary_pid) == ("esx02", "esx05",
                                                                   ft.secondary_pid)
    st = enable.ft_status(lab, "app01")
    assert st["state"] == records.PROTECTED and st["primary_ft"]["checkpoints"] >= 1
    assert st["primary_ft"]["peer"] == "vmk2 198.18.16.15"


def test_link_only_break_secondary_frozen_primary_goes_on(env: tuple[Datacenter, str]) -> None:
    dc, lab = env
    rec = manage.create(dc, lab, "web03", "esx01", MEMORY, RATE)
    ft = enable.ft_on(dc, lab, "web03", "esx02", timeout=TIMEOUT)
    os.kill(ft.secondary_pid, signal.SIGSTOP)
    try:
        wait_for("the primary wins the arbiter",
                 lambda: arbiter.winner(lab, ft.session) == arbiter.PRIMARY, BOUND)
    finally:
        os.kill(ft.secondary_pid, signal.SIGCONT)
    wait_for("the secondary stands down", lambda: not registry.alive(ft.secondary_pid), BOUND)
    assert manage.get(lab, "web03").pid == rec.pid
    assert enable.ft_status(lab, "web03")["state"] == records.UNPROTECTED
    assert {e["event"] for e in records.events(lab, "web03")} == {"link-lost", "stood-down"}
    wait_writes(lab, "web03", int(manage.status(lab, "web03")["writes"]))
    assert vm_processes(lab) == [rec.pid]


def test_link_only_break_primary_frozen_secondary_goes_on(env: tuple[Datacenter, str]) -> None:
    dc, lab = env
    rec = manage.create(dc, lab, "web04", "esx01", MEMORY, RATE)
    ft = enable.ft_on(dc, lab, "web04", "esx02", timeout=TIMEOUT)
    os.kill(rec.pid, signal.SIGSTOP)
    try:
        wait_for("the secondary runs the VM", lambda: _runs(lab, "web04", ft.secondary_pid),
                 BOUND)
    finally:
        os.kill(rec.pid, signal.SIGCONT)
    wait_for("the old primary stops", lambda: not registry.alive(rec.pid), BOUND)
    assert manage.get(lab, "web04").pid == ft.secondary_pid
    assert arbiter.winner(lab, ft.session) == arbiter.SECONDARY
    assert {e["event"] for e in records.events(lab, "web04")} == {"failover", "stood-down"}
    assert vm_processes(lab) == [ft.secondary_pid]


def _runs(lab: str, vm: str, pid: int) -> registry.VmRecord | None:
    try:
        rec = registry.load(lab, vm)
    except Exception:
        return None
    return rec if rec.pid == pid else None


def test_cli_on_status_off(flab: tuple[Inventory, str, Path],
                           env: tuple[Datacenter, str]) -> None:
    store = flab[2]

    def cli(*args: str) -> tuple[int, str]:
        got = CliRunner().invoke(main, ["--store", str(store), *args])
        return got.exit_code, got.output

    code, out = cli("vm", "create", "web05", "-H", "esx01", "--memory", "8MiB",
                    "--dirty-rate", "10MB/s")
    assert code == 0, out
    code, out = cli("vm", "ft", "on", "web05", "--secondary", "esx03")
    assert code != 0 and out.strip().startswith("Error [PATH-3]") and "esx03" in out, out
    code, out = cli("vm", "ft", "on", "web05", "--secondary", "esx02", "--output-port",
                    str(OUTPUT_PORT + 1))
    assert code == 0 and "secondary on esx02" in out, out
    code, out = cli("vm", "ft", "status", "web05", "--json")
    st = json.loads(out)
    assert st["state"] == "protected" and st["primary_ft"]["adapter"] == "vmk2", out
    assert 0 <= st["primary_ft"]["output_released"] <= st["primary_ft"]["output_produced"]
    code, out = cli("vm", "ft", "status", "web05")
    assert code == 0 and "checkpoints," in out and "last acked #" in out, out
    code, out = cli("vm", "ft", "off", "web05")
    assert code == 0 and "off" in out, out
    code, out = cli("vm", "ft", "status", "web05")
    assert code != 0 and out.startswith("Error [NotFound]"), out


def _client(lab: str, address: str, first: int) -> socket.socket:
    sock = tcp_socket(stack_ns(lab, "esx03", DEFAULT_STACK), socket.AF_INET)
    sock.settimeout(5.0)
    sock.connect((address, OUTPUT_PORT))
    sock.sendall(f"from {first}\n".encode())
    return sock


def _read(sock: socket.socket, seconds: float, got: list[int]) -> None:
    """Records until the peer goes or `seconds` pass; each checked against record(n)."""
    end, buf = time.monotonic() + seconds, b""
    with sock:
        while time.monotonic() < end:
            try:
                data = sock.recv(65536)
            except TimeoutError:
                continue
            except ConnectionResetError:
                break
            if not data:
                break
            buf += data
            *lines, buf = buf.split(b"\n")
            for line in lines:
                n = int(line.split()[0])
                assert record(n) == line + b"\n", line
                got.append(n)


def test_output_commit_nothing_seen_is_lost_on_failover(env: tuple[Datacenter, str]) -> None:
    dc, lab = env
    rec = manage.create(dc, lab, "out01", "esx01", MEMORY, RATE)
    ft = enable.ft_on(dc, lab, "out01", "esx02", timeout=TIMEOUT, output_port=OUTPUT_PORT,
                      output_rate=400)
    seen: list[int] = []
    sock = _client(lab, "198.18.0.11", 0)
    time.sleep(1.0)
    st = enable.ft_status(lab, "out01")["primary_ft"]
    assert st["output_released"] < st["output_produced"] + 1  # held back, never ahead
    os.kill(rec.pid, signal.SIGKILL)
    _read(sock, BOUND, seen)  # what the primary let out, until it died
    wait_for("the secondary runs the VM", lambda: _runs(lab, "out01", ft.secondary_pid),
             BOUND)
    mark = enable.ft_status(lab, "out01")["primary_ft"]["output_mark"]
    assert seen == list(range(len(seen))) and len(seen) > 100, seen[-5:]
    assert len(seen) <= mark, (f"the client saw record {len(seen) - 1}, the checkpoint the "
                               f"secondary went live from holds {mark}: output left early")
    after: list[int] = []
    _read(_client(lab, "198.18.0.12", len(seen)), 1.0, after)
    print(f"\noutput commit: {len(seen)} records before kill -9, checkpoint mark {mark}, "
          f"{len(after)} from the secondary after")
    assert after[:1] == [len(seen)] and after == list(range(len(seen), len(seen) + len(after)))
    assert after[-1] > mark  # the secondary's guest emits on
