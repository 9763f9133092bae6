"""vMotion under faults: a pair's uplinks fail, all fail, the target dies, teaming fails over,
the target's memory is corrupt (verify after resume rolls back), the guest outruns the network
(SDPS throttling).

Each migration is slowed to ~8 MB/s per stream (`rate_limit`) so it lasts a few
seconds and the fault lands mid-pre-copy. Uplinks go down the administrator's
way (`esxcli network nic down` = ops.nic.set_link through Inventory.run).
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Iterator
from functools import partial

import pytest
from kernelkit import wait_until
from labkit import lab_name
from vmotionkit import VMOTION_LAB, vm_processes, wait_writes

from vmknet.inventory import Inventory
from vmknet.lab import lifecycle
from vmknet.ops import nic
from vmknet.traffic.icmp import ping_once
from vmknet.traffic.place import stack_ns
from vmknet.vm import manage, registry
from vmknet.vm.reaper import kill_lab_vms
from vmknet.vmotion import MigrationReport, migrate
from vmknet.vmotion.verify import FLIP_ENV

MEMORY = 32 << 20
RATE = 1_000_000
SLOW = 8_000_000  # bytes/s per stream: ~2 s of pre-copy over two pairs


@pytest.fixture(scope="module")
def flab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Inventory, str]]:
    folder = tmp_path_factory.mktemp("vmotion-faults")
    (folder / "lab.yaml").write_text(VMOTION_LAB, encoding="utf-8")
    inv = Inventory.open(folder / "inventory.db")
    name = lab_name()
    try:
        lifecycle.up(inv, folder / "lab.yaml", name)
        yield inv, name
    finally:
        lifecycle.down(inv, name)
        assert vm_processes(name) == []


@pytest.fixture
def fl(flab: tuple[Inventory, str]) -> Iterator[tuple[Inventory, str]]:
    inv, name = flab
    yield inv, name
    kill_lab_vms(name)
    for vmnic in ("vmnic2", "vmnic3", "vmnic4"):  # every test leaves the uplinks up
        if inv.read().hosts["esx01"].nics[vmnic].link != "up":
            inv.run(partial(nic.set_link, host="esx01", name=vmnic, up=True))
    ns = stack_ns(name, "esx01", "vmotion")
    for source, peer in (("198.18.4.11", "198.18.4.12"), ("198.18.4.21", "198.18.4.22")):
        assert wait_until(lambda s=source, p=peer: ping_once(ns, p, source=s,
                                                              timeout=0.2).ok, 20) is not None


def _in_background(inv: Inventory, lab: str, vm: str, **kw: object) -> tuple[
        threading.Thread, list[MigrationReport]]:
    out: list[MigrationReport] = []
    dc = inv.read()
    thread = threading.Thread(target=lambda: out.append(
        migrate(dc, lab, vm, "esx02", rate_limit=SLOW, **kw)))  # type: ignore[arg-type]
    thread.start()
    time.sleep(0.8)  # mid-pre-copy
    return thread, out


def _links(inv: Inventory, up: bool, *vmnics: str) -> None:
    for vmnic in vmnics:
        inv.run(partial(nic.set_link, host="esx01", name=vmnic, up=up))


def test_one_pair_fails_the_other_finishes(fl: tuple[Inventory, str]) -> None:
    inv, lab = fl
    manage.create(inv.read(), lab, "f1", "esx01", MEMORY, RATE)
    thread, out = _in_background(inv, lab, "f1", timeout=3.0)
    _links(inv, False, "vmnic3")  # vmk2's only uplink
    thread.join(60)
    report = out[0]
    assert report.completed, report.reason
    by = {p.source_vmk: p for p in report.pairs}
    assert by["vmk2"].failed and by["vmk1"].failed is None
    assert manage.get(lab, "f1").host == "esx02"


def test_all_pairs_fail_source_untouched(fl: tuple[Inventory, str]) -> None:
    inv, lab = fl
    rec = manage.create(inv.read(), lab, "f2", "esx01", MEMORY, RATE)
    thread, out = _in_background(inv, lab, "f2", timeout=3.0)
    _links(inv, False, "vmnic2", "vmnic3", "vmnic4")
    thread.join(60)
    report = out[0]
    assert not report.completed and all(p.failed for p in report.pairs), report.to_dict()
    assert manage.get(lab, "f2") == rec  # same host, pid, record
    wait_writes(lab, "f2", int(manage.status(lab, "f2")["writes"]))  # still running
    assert vm_processes(lab) == [rec.pid], "the incoming VM must be gone"


def test_target_killed_aborts(fl: tuple[Inventory, str]) -> None:
    inv, lab = fl
    rec = manage.create(inv.read(), lab, "f3", "esx01", MEMORY, RATE)
    thread, out = _in_background(inv, lab, "f3")
    incoming = [p for p in vm_processes(lab) if p != rec.pid]
    assert len(incoming) == 1
    os.kill(incoming[0], signal.SIGKILL)
    thread.join(60)
    assert not out[0].completed
    assert manage.get(lab, "f3") == rec and registry.alive(rec.pid)
    wait_writes(lab, "f3", int(manage.status(lab, "f3")["writes"]))


def test_teaming_failover_is_survived(fl: tuple[Inventory, str]) -> None:
    inv, lab = fl
    manage.create(inv.read(), lab, "f4", "esx01", MEMORY, RATE)
    thread, out = _in_background(inv, lab, "f4")  # default timeout 15 s > STP's ~4 s
    _links(inv, False, "vmnic2")  # vmk1 fails over to its standby vmnic4
    thread.join(90)
    report = out[0]
    assert report.completed, report.reason
    assert all(p.failed is None for p in report.pairs), report.to_dict()


def test_digest_mismatch_rolls_back_to_the_source(fl: tuple[Inventory, str],
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """A receive path that corrupts one byte: the target resumed, but the source's digest of
    its frozen memory differs, so the target is stopped and the source runs on."""
    inv, lab = fl
    rec = manage.create(inv.read(), lab, "f5", "esx01", MEMORY, RATE)
    monkeypatch.setenv(FLIP_ENV, "5")  # the incoming VM process inherits the hook
    report = migrate(inv.read(), lab, "f5", "esx02")
    assert not report.completed and report.code == "DigestMismatch", report.to_dict()
    assert report.downtime_ms is not None and not report.verified
    assert report.digest != report.target_digest
    assert manage.get(lab, "f5") == rec and [r.host for r in manage.records(lab)] == ["esx01"]
    wait_writes(lab, "f5", int(manage.status(lab, "f5")["writes"]))  # runs on, at the source
    assert vm_processes(lab) == [rec.pid], "the unverified target must be gone"


def test_sdps_throttles_a_guest_that_outruns_the_network(fl: tuple[Inventory, str]) -> None:
    """20 MB/s of dirtying (80% on a 1.6 MiB hot set) against 2 x 4 MB/s: pre-copy cannot
    converge in max_rounds, so the guest is slowed (SDPS) until it does, and completes."""
    inv, lab = fl
    manage.create(inv.read(), lab, "f6", "esx01", 16 << 20, 20_000_000)
    wait_writes(lab, "f6", 0)
    report = migrate(inv.read(), lab, "f6", "esx02", rate_limit=4_000_000, max_rounds=3)
    assert report.completed, report.reason
    assert report.throttled and "SDPS" in report.throttle_reason, report.to_dict()
    assert "did not converge in 3 rounds" in report.throttle_reason
    assert len(report.rounds) > 3 + 1 and report.verified
    assert manage.get(lab, "f6").host == "esx02"
