"""A VM's disk as a file on a shared NFS 3 datastore (STO-5), in a real lab:
examples/storage-lab.yaml, nfs-ganesha in the array's namespace, vmknet's NFS client
(storage/nfsc) in the VM process, from the adapter that reaches the server (vmk4).
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from click.testing import CliRunner
from diskkit import EXAMPLE, CliLab
from kernelkit import wait_until
from labkit import lab_name

from vmknet.cli.main import main
from vmknet.storage.arrays import export_dir

SERVER = "198.18.31.100"
RATE = 200
KB = 1000
QUIET = 64 * KB


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CliLab]:
    name = lab_name()
    folder = tmp_path_factory.mktemp("vmdisknfs")
    store = ["--store", str(folder / "inventory.db")]
    it = CliLab(name, store, {"VMKNET_DATASTORE_BASE": str(folder / "datastores")})
    try:
        it.cli("lab", "up", str(EXAMPLE), "--name", name)
        it.cli("esxcli", "-H", "esx01", "storage", "nfs", "add", "-H", SERVER, "-s", "/share",
               "-v", "nfs01")
        yield it
    finally:
        CliRunner().invoke(main, [*store, "lab", "down", "--name", name], env=it.env)


def test_nfs_disk_io_leaves_by_the_adapter_that_reaches_the_server(lab: CliLab) -> None:
    out = lab.cli("vm", "create", "web01", "-H", "esx01", "--memory", "16MiB", "--dirty-rate",
                  "1MB/s", "--disk", "[nfs01]", "--disk-size", "64MiB", "--disk-rate",
                  str(RATE))
    assert "[nfs01] web01/web01-flat.vmdk (nfs, 64.0 MiB)" in out, out
    assert wait_until(lambda: lab.disk()["writes"] >= 20, 10.0) is not None
    before, start = lab.adapter_bytes("esx01"), lab.disk()["writes"]
    assert wait_until(lambda: lab.disk()["writes"] >= start + RATE, 10.0) is not None
    after, d = lab.adapter_bytes("esx01"), lab.disk()
    moved = {vmk: after[vmk] - before[vmk] for vmk in after}
    written = (d["writes"] - start) * 4096
    assert d["io_errors"] == 0 and d["verify_failures"] == 0, d
    assert moved["vmk4"] > written, (moved, written)  # each write and its read-back
    for vmk in ("vmk0", "vmk1", "vmk2", "vmk3"):
        assert moved[vmk] < QUIET, (vmk, moved)
    # the file is on the array's export (ganesha's FSAL_VFS directory), sparse, full size
    flat = export_dir(lab.name, "array01", "/share") / "web01" / "web01-flat.vmdk"
    assert flat.stat().st_size == 64 << 20
    assert flat.stat().st_blocks * 512 < 16 << 20  # sparse: only the written slots


def test_vmotion_needs_the_datastore_on_the_target_then_moves_memory_only(lab: CliLab) -> None:
    code, out = lab.run("vmotion", "web01", "--to", "esx02")
    assert code != 0 and out.startswith("Error [STO-5]: Host esx02 does not see"), out
    assert "does not mount NFS datastore nfs01" in out
    lab.cli("esxcli", "-H", "esx02", "storage", "nfs", "add", "-H", SERVER, "-s", "/share",
            "-v", "nfs01")
    report = json.loads(lab.cli("vmotion", "web01", "--to", "esx02", "--json"))
    assert report["result"] == "completed", report
    assert report["registration"]["disk_bytes"] == 0, report  # the .vmx followed, not the disk
    assert str(lab.status()["host"]) == "esx02"
    seq = lab.disk()["seq"]
    assert wait_until(lambda: lab.disk()["seq"] >= seq + RATE // 2, 10.0) is not None
    d = lab.disk()
    assert d["carried_verified"] is True, d  # the source's last write, read over esx02's vmk4
    assert d["io_errors"] == 0 and d["verify_failures"] == 0, d
    before = lab.adapter_bytes("esx02")
    assert wait_until(lambda: lab.disk()["seq"] >= seq + RATE, 10.0) is not None
    moved = {vmk: v - before[vmk] for vmk, v in lab.adapter_bytes("esx02").items()}
    assert moved["vmk4"] > 100 * KB and moved["vmk2"] < QUIET and moved["vmk3"] < QUIET, moved


def test_cold_migrate_copies_no_disk_byte(lab: CliLab) -> None:
    lab.cli("vm", "power-off", "web01")
    report = json.loads(lab.cli("vm", "migrate", "web01", "--to", "esx01", "--json"))
    assert report["completed"] and report["disk_bytes"] == 0, report
    assert report["shared_disks"] == ["[nfs01] web01/web01-flat.vmdk"]
    assert [f["target"].rsplit("/", 1)[-1] for f in report["files"]] == ["web01.vmx"]
    lab.cli("vm", "power-on", "web01")
    assert str(lab.status()["host"]) == "esx01"
    assert wait_until(lambda: lab.disk()["writes"] >= 20, 10.0) is not None
    d = lab.disk()
    assert d["carried_verified"] is True, d  # the last write before power-off, read back
    assert d["io_errors"] == 0 and d["verify_failures"] == 0, d
    lab.cli("vm", "destroy", "web01")
