"""Provisioning in a real lab: VM files on datastores, cold migration, clone, snapshots,
PATH-2 fallbacks seen through the reports, NoPath and a broken copy leaving the source
untouched. The lab is test_nfc_copy's (esx01/esx02 provisioning stack, esx03 management
only, esx04 unreachable provisioning adapter, esx05 no path).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from labkit import lab_name
from test_nfc_copy import NFC_LAB, MiB, digest
from traffickit import wait_path

from vmknet.errors import DataplaneError, NoPath
from vmknet.inventory import Inventory
from vmknet.lab import lifecycle
from vmknet.model import DEFAULT_STACK, PROVISIONING_STACK, Datacenter
from vmknet.nfc import Datastores, NfcServer
from vmknet.provision import cold, files, placement, snapshots
from vmknet.provision.layout import GRAIN
from vmknet.vm import manage

DISK = 64 * MiB


@dataclass
class Env:
    dc: Datacenter
    lab: str
    stores: Datastores

    def create(self, vm: str, host: str) -> placement.Placement:
        return files.create(self.dc, self.lab, vm, host, disk=DISK, memory=8 * MiB,
                            dirty_rate=1_000_000, disk_data=4 * MiB, stores=self.stores)


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    folder = tmp_path_factory.mktemp("prov")
    (folder / "lab.yaml").write_text(NFC_LAB, encoding="utf-8")
    inv = Inventory.open(folder / "inventory.db")
    name = lab_name()
    try:
        lifecycle.up(inv, folder / "lab.yaml", name)
        for host, stack, target in (("esx01", PROVISIONING_STACK, "198.18.8.12"),
                                    ("esx01", PROVISIONING_STACK, "198.18.0.13"),
                                    ("esx04", DEFAULT_STACK, "198.18.8.12")):
            wait_path(name, host, stack, target)
        yield Env(inv.read(), name, Datastores(folder / "datastores"))
    finally:
        for rec in manage.records(name):
            manage.destroy(name, rec.name)
        lifecycle.down(inv, name)


def digests(folder: Path) -> dict[str, str]:
    return {p.name: digest(p) for p in sorted(folder.iterdir())}


def pairs(report: cold.MoveReport) -> list[tuple[str, str]]:
    return [(a["source_vmk"], a["target_vmk"]) for a in report.adapters()]


def test_create_power_cycle_and_cold_migrate(env: Env) -> None:
    p = env.create("web01", "esx01")
    disk = files.vm_dir(p) / "web01.vmdk"
    assert os.stat(disk).st_size == DISK
    assert os.stat(disk).st_blocks * 512 <= 5 * MiB  # sparse: only the guest data
    rec = files.power_on(env.dc, env.lab, "web01")
    assert rec.host == "esx01" and files.running(env.lab, "web01") is not None
    with pytest.raises(Exception, match="powered on"):
        cold.migrate(env.dc, env.lab, "web01", "esx02")
    files.power_off(env.lab, "web01")
    assert files.running(env.lab, "web01") is None
    assert placement.load(env.lab, "web01").host == "esx01"  # registered while off
    before = digests(files.vm_dir(p))
    seen: list[int] = []
    report = cold.migrate(env.dc, env.lab, "web01", "esx02", datastore="ds2",
                          progress=lambda d, t, f: seen.append(d))
    moved = placement.load(env.lab, "web01")
    assert (moved.host, moved.datastore) == ("esx02", "ds2")
    assert digests(files.vm_dir(moved)) == before
    assert not files.vm_dir(p).exists()
    assert report.completed and pairs(report) == [("vmk1", "vmk1")]
    assert all(PROVISIONING_STACK in a["reason"] or "PATH-2" in a["reason"]
               for a in report.adapters())
    assert 4 * MiB <= report.data_bytes < 4 * MiB + 4096  # the disk data and the .vmx
    assert report.bytes_on_wire < 5 * MiB
    assert seen and seen[-1] == report.data_bytes
    assert files.power_on(env.dc, env.lab, "web01").host == "esx02"
    files.power_off(env.lab, "web01")


def test_snapshots_and_migration_with_snapshots(env: Env) -> None:
    p = placement.load(env.lab, "web01")  # on esx02:[ds2] after the first test
    files.guest_write(p, 8 * GRAIN, os.urandom(4 * GRAIN))
    at_s1 = files.logical_digest(p)
    snapshots.create(env.lab, "web01", "s1")
    files.guest_write(p, 8 * GRAIN, os.urandom(2 * GRAIN))
    snapshots.create(env.lab, "web01", "s2")
    files.guest_write(p, 40 * GRAIN, os.urandom(GRAIN))
    now = files.logical_digest(p)
    assert now != at_s1
    before = digests(files.vm_dir(p))
    assert len([n for n in before if n.endswith(".vmdk")]) == 3
    report = cold.migrate(env.dc, env.lab, "web01", "esx01")
    q = placement.load(env.lab, "web01")
    assert q.host == "esx01" and digests(files.vm_dir(q)) == before
    assert files.logical_digest(q) == now and len(report.files) == 4
    snaps, _ = snapshots.listing(env.lab, "web01")
    assert [s.name for s in snaps] == ["s1", "s2"]
    snapshots.revert(env.lab, "web01", "s1")
    assert files.logical_digest(q) == at_s1
    assert len([n for n in os.listdir(files.vm_dir(q)) if n.endswith(".vmdk")]) == 3


def test_clone_to_management_only_host(env: Env) -> None:
    src = placement.load(env.lab, "web01")
    before = digests(files.vm_dir(src))
    report = cold.clone(env.dc, env.lab, "web01", "esx03", "web02")
    clone = placement.load(env.lab, "web02")
    assert clone.host == "esx03" and digests(files.vm_dir(src)) == before  # source kept
    assert files.logical_digest(clone) == files.logical_digest(src)
    assert sorted(os.listdir(files.vm_dir(clone)))[0].startswith("web02")
    [adapter] = report.adapters()
    assert (adapter["source_vmk"], adapter["target_vmk"]) == ("vmk1", "vmk0")
    assert "esx03/vmk0 is fallback to management (PATH-2)" in adapter["reason"]
    assert files.power_on(env.dc, env.lab, "web02").host == "esx03"
    files.delete(env.lab, "web02")


def test_source_falls_back_to_management(env: Env) -> None:
    env.create("db01", "esx04")
    report = cold.clone(env.dc, env.lab, "db01", "esx02", "db02")
    [adapter] = report.adapters()
    assert (adapter["source_vmk"], adapter["target_vmk"]) == ("vmk0", "vmk1")
    assert "fallback to management (PATH-2): vmk1 cannot reach esx02" in adapter["reason"]
    files.delete(env.lab, "db02")


def test_nopath_before_anything_moves(env: Env) -> None:
    p = placement.load(env.lab, "db01")
    before = digests(files.vm_dir(p))
    with pytest.raises(NoPath):
        cold.migrate(env.dc, env.lab, "db01", "esx05")
    assert not env.stores.host_dir(env.lab, "esx05").exists()
    assert digests(files.vm_dir(p)) == before and placement.load(env.lab, "db01") == p


def test_broken_copy_leaves_source_and_registers_nothing(env: Env) -> None:
    p = placement.load(env.lab, "web01")
    before = digests(files.vm_dir(p))
    servers: list[NfcServer] = []

    def drop(done: int, total: int, name: str) -> None:
        if done >= total // 3 and servers:
            servers.pop().drop_connections()  # the target's NFC server breaks mid-copy

    with pytest.raises(DataplaneError):
        cold.migrate(env.dc, env.lab, "web01", "esx02", resume=False, bandwidth_limit=8e6,
                     progress=drop, server_hook=servers.append)
    assert placement.load(env.lab, "web01") == p
    assert digests(files.vm_dir(p)) == before
    target = env.stores.root(env.lab, "esx02", "ds2")
    assert sorted(os.listdir(target)) == []  # neither the VM nor its staging directory
