"""Live migration with a datastore change: disks over NFC (PATH-2: these hosts have no
provisioning adapter, so management carries it), memory over vMotion, then the switch of
the file location; a refused vMotion leaves the VM running with its files at the source."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from labkit import lab_name
from test_nfc_copy import MiB, digest
from vmotionkit import VMOTION_LAB, vm_processes, wait_writes

from vmknet.errors import RuleViolation
from vmknet.inventory import Inventory
from vmknet.lab import lifecycle
from vmknet.model import Datacenter
from vmknet.nfc import Datastores
from vmknet.provision import files, live, placement
from vmknet.vm import manage


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Datacenter, str,
                                                                     Datastores]]:
    folder = tmp_path_factory.mktemp("provlive")
    (folder / "lab.yaml").write_text(VMOTION_LAB, encoding="utf-8")
    inv = Inventory.open(folder / "inventory.db")
    name = lab_name()
    try:
        lifecycle.up(inv, folder / "lab.yaml", name)
        yield inv.read(), name, Datastores(folder / "datastores")
    finally:
        for rec in manage.records(name):
            manage.destroy(name, rec.name)
        lifecycle.down(inv, name)
        assert vm_processes(name) == []


def test_vmotion_with_datastore_change(env: tuple[Datacenter, str, Datastores]) -> None:
    dc, lab, stores = env
    p = files.create(dc, lab, "web01", "esx01", disk=64 * MiB, memory=32 * MiB,
                     dirty_rate=10_000_000, disk_data=4 * MiB, stores=stores)
    files.power_on(dc, lab, "web01")
    wait_writes(lab, "web01", 0)
    before = {f.name: digest(f) for f in files.vm_dir(p).iterdir()}

    # esx04 has no vMotion adapter (EX-5): refused before the disks move
    with pytest.raises(RuleViolation):
        live.vmotion(dc, lab, "web01", "esx04", datastore="ds2")
    assert placement.load(lab, "web01") == p and manage.get(lab, "web01").host == "esx01"
    assert {f.name: digest(f) for f in files.vm_dir(p).iterdir()} == before
    assert not stores.host_dir(lab, "esx04").exists()

    report = live.vmotion(dc, lab, "web01", "esx02", datastore="ds2")
    assert report.completed, report.reason
    moved = placement.load(lab, "web01")
    assert (moved.host, moved.datastore) == ("esx02", "ds2")
    assert manage.get(lab, "web01").host == "esx02"
    assert {f.name: digest(f) for f in files.vm_dir(moved).iterdir()} == before
    assert not files.vm_dir(p).exists()
    [adapter] = report.adapters()
    assert (adapter["source_vmk"], adapter["target_vmk"]) == ("vmk0", "vmk0")
    assert "PATH-2" in adapter["reason"]
    assert report.vmotion is not None and report.vmotion["result"] == "completed"
    assert {pair["source_vmk"] for pair in report.vmotion["pairs"]} == {"vmk1", "vmk2"}
    print(report.summary(), f"downtime {report.vmotion['downtime_ms']:.1f} ms")
    files.delete(lab, "web01")
