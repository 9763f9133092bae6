"""A VM's disk on a shared iSCSI LUN (STO-5), in a real lab: examples/storage-lab.yaml.

The LUN is used raw (an RDM: vmknet formats no VMFS) through the host's NMP device:
one session per bound adapter (vmk2 on vmnic2, vmk3 on vmnic3), round robin after each
command. The VM process writes 4 KiB blocks and reads each back; the interface counters
say which adapters carried them. Then the VM moves: vMotion refused to a host that does
not see the LUN (STO-5), vMotion once it does (memory only; the disk is reopened there
and the source's last write is read back through the target's own paths), and a cold
migration that moves the registration only (0 disk bytes over NFC).
"""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from diskkit import EXAMPLE, CliLab
from kernelkit import wait_until
from labkit import lab_name

from vmknet.cli.main import main
from vmknet.storage import tgt
from vmknet.storage.paths import device_id
from vmknet.vm.disk import DEVFS

DEVICE = device_id("iqn.2026-11.com.example:array01.ds01", 1)  # LUN 1, 256 MiB
KB, MB = 1000, 1000 * 1000
RATE = 200  # disk writes per second, each read back
QUIET = 64 * KB  # an adapter that carries no disk I/O moves less than this in the window


class DiskLab(CliLab):
    def rescan(self, host: str) -> None:
        """Sees the LUNs, with round robin after every command: a write (data out) on one
        path and its read-back (data in) on the other."""
        super().rescan(host)
        self.cli("esxcli", "-H", host, "storage", "nmp", "device", "set", "-d", DEVICE,
                 "--psp", "VMW_PSP_RR")
        self.cli("esxcli", "-H", host, "storage", "nmp", "psp", "roundrobin", "deviceconfig",
                 "set", "-d", DEVICE, "-t", "iops", "-I", "1")


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DiskLab]:
    name = lab_name()
    folder = tmp_path_factory.mktemp("vmdisk")
    store = ["--store", str(folder / "inventory.db")]
    env = {"VMKNET_DATASTORE_BASE": str(folder / "datastores")}
    it = DiskLab(name, store, env)
    try:
        it.cli("lab", "up", str(EXAMPLE), "--name", name)
        it.rescan("esx01")  # esx02 sees no LUN yet
        yield it
    finally:
        CliRunner().invoke(main, [*store, "lab", "down", "--name", name], env=env)


def busy(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    return {vmk: after[vmk] - before[vmk] for vmk in after}


def test_disk_io_leaves_by_the_bound_adapters_only(lab: DiskLab) -> None:
    out = lab.cli("vm", "create", "web01", "-H", "esx01", "--memory", "32MiB",
                  "--dirty-rate", "1MB/s", "--disk", DEVFS + DEVICE, "--disk-rate", str(RATE))
    assert "iscsi, 256.0 MiB" in out, out
    assert wait_until(lambda: lab.disk()["writes"] >= 20, 10.0) is not None
    before = lab.adapter_bytes("esx01")
    start = lab.disk()
    assert wait_until(lambda: lab.disk()["writes"] >= start["writes"] + 2 * RATE, 10.0)
    moved = busy(before, lab.adapter_bytes("esx01"))
    d = lab.disk()
    assert d["io_errors"] == 0 and d["verify_failures"] == 0, d
    assert d["reads"] >= d["writes"] - 1 and d["writes"] > start["writes"]  # one in flight
    written = (d["writes"] - start["writes"]) * 4096
    # round robin after every command: each bound adapter carries about half the I/O
    assert moved["vmk2"] > written // 4 and moved["vmk3"] > written // 4, (moved, written)
    for vmk in ("vmk0", "vmk1", "vmk4"):  # management, vMotion, NFS: no disk I/O
        assert moved[vmk] < QUIET, (vmk, moved)
    listing = lab.cli("vm", "list")
    assert DEVFS + DEVICE in listing and "(iscsi)" in listing
    info = {line.split("  ", 1)[0]: line.split("  ", 1)[-1].strip()
            for line in lab.cli("vm", "info", "web01").splitlines()}
    assert info["Disk"] == DEVFS + DEVICE and info["Datastore"] == f"{DEVICE} (iscsi)"
    assert info["I/O Errors"] == "0" and info["Verify Failures"] == "0", info


def test_vmotion_to_a_host_that_does_not_see_the_lun_is_refused(lab: DiskLab) -> None:
    code, out = lab.run("vmotion", "web01", "--to", "esx02")
    assert code != 0
    lines = out.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error [STO-5]: Host esx02 does not see"), out
    assert lab.status()["host"] == "esx01"
    code, out = lab.run("vm", "power-off", "web01")  # a cold migration is refused too
    assert code == 0, out
    code, out = lab.run("vm", "migrate", "web01", "--to", "esx02")
    assert code != 0 and out.startswith("Error [STO-5]"), out
    lab.cli("vm", "power-on", "web01")
    assert wait_until(lambda: lab.disk()["writes"] >= 1, 10.0) is not None
    d = lab.disk()
    assert d["carried_verified"] is True, d  # the last write before power-off read back
    assert lab.status()["host"] == "esx01"


def test_vmotion_moves_memory_only_and_the_disk_verifies_on(lab: DiskLab) -> None:
    lab.rescan("esx02")
    assert wait_until(lambda: lab.disk()["writes"] >= 20, 10.0) is not None
    vmotion_before = lab.adapter_bytes("esx01")["vmk1"]
    report = json.loads(lab.cli("vmotion", "web01", "--to", "esx02", "--json"))
    assert report["result"] == "completed", report
    moved = report["registration"]  # the .vmx follows the VM (NFC), the disk does not
    assert moved["disk_bytes"] == 0 and moved["shared_disks"] == [DEVFS + DEVICE], moved
    assert [f["target"].rsplit("/", 1)[-1] for f in moved["files"]] == ["web01.vmx"]
    files = json.loads(lab.cli("vm", "files", "--json"))
    assert [(f["vm"], f["host"], f["power"]) for f in files] == [("web01", "esx02", "on")]
    sent = lab.adapter_bytes("esx01")["vmk1"] - vmotion_before
    assert report["bytes"] < 2 * 32 * MB, report["bytes"]  # the memory: at most 32 MiB
    assert sent < 2 * 32 * MB, sent  # (a copy of the disk would be 256 MiB; NFC: management)
    st = lab.status()
    assert st["host"] == "esx02"
    seq = st["disk"]["seq"]
    assert wait_until(lambda: lab.disk()["writes"] >= seq + RATE, 10.0) is not None
    d = lab.disk()
    # the target first read back the source's last write, through its own paths
    assert d["carried_verified"] is True, d
    assert d["io_errors"] == 0 and d["verify_failures"] == 0, d
    before1, before2 = lab.adapter_bytes("esx01"), lab.adapter_bytes("esx02")
    start = lab.disk()["writes"]
    assert wait_until(lambda: lab.disk()["writes"] >= start + RATE, 10.0) is not None
    moved1 = busy(before1, lab.adapter_bytes("esx01"))
    moved2 = busy(before2, lab.adapter_bytes("esx02"))
    assert moved2["vmk2"] > 64 * KB and moved2["vmk3"] > 64 * KB, moved2
    assert moved1["vmk2"] < QUIET and moved1["vmk3"] < QUIET, moved1  # the source is gone


def test_an_uplink_down_under_the_vms_io_is_not_seen_by_the_guest(lab: DiskLab) -> None:
    """vmnic2 of esx02 down: the C0 path dies, NMP goes on over C1 (vmk3); the guest's
    stream sees no error, only a pause of about the 1 s path timeout (aim <= 2 s)."""
    before = lab.disk()
    assert before["max_io_ms"] < 1000, before  # no failover yet
    lab.cli("esxcli", "-H", "esx02", "network", "nic", "down", "-n", "vmnic2")
    try:
        start = lab.adapter_bytes("esx02")
        assert wait_until(lambda: lab.disk()["writes"] >= before["writes"] + 2 * RATE,
                          15.0) is not None
        moved = busy(start, lab.adapter_bytes("esx02"))
        d = lab.disk()
        assert d["io_errors"] == 0 and d["verify_failures"] == 0, d
        assert 500 <= d["max_io_ms"] <= 2000, d  # a failover happened, within the aim
        assert moved["vmk3"] > 2 * RATE * 4096, moved  # everything on C1 now
    finally:
        lab.cli("esxcli", "-H", "esx02", "network", "nic", "up", "-n", "vmnic2")


def test_the_array_stopped_is_a_pause_then_an_io_error_never_corruption(lab: DiskLab) -> None:
    """tgtd stopped (SIGSTOP) for 3 s: the guest's I/O pauses and goes on, no error; stopped
    until NMP gives up (no live path for 10 s: APD): the guest counts an I/O error, and
    once the array is back its stream goes on and every block reads back as written."""
    (pid,) = tgt.lab_pids(lab.name)
    before = lab.disk()
    os.kill(pid, signal.SIGSTOP)
    try:
        time.sleep(3.0)
    finally:
        os.kill(pid, signal.SIGCONT)
    assert wait_until(lambda: lab.disk()["writes"] >= before["writes"] + RATE, 30.0)
    d = lab.disk()
    assert d["io_errors"] == before["io_errors"] and d["verify_failures"] == 0, d
    assert 2000 <= d["max_io_ms"] <= 10_000, d  # the pause the guest saw, not an error
    os.kill(pid, signal.SIGSTOP)
    try:
        apd = wait_until(lambda: lab.disk()["io_errors"] > before["io_errors"], 30.0)
    finally:
        os.kill(pid, signal.SIGCONT)
    d = lab.disk()
    assert apd is not None and "All paths down" in d["last_error"], d
    writes = d["writes"]
    assert wait_until(lambda: lab.disk()["writes"] >= writes + RATE, 30.0) is not None
    assert lab.disk()["verify_failures"] == 0


def test_cold_migrate_moves_the_registration_only(lab: DiskLab) -> None:
    lab.cli("vm", "power-off", "web01")
    report = json.loads(lab.cli("vm", "migrate", "web01", "--to", "esx01", "--json"))
    assert report["completed"] and report["disk_bytes"] == 0, report
    assert report["shared_disks"] == [DEVFS + DEVICE]
    assert [f["target"].rsplit("/", 1)[-1] for f in report["files"]] == ["web01.vmx"]
    assert "0 disk bytes copied" in report["reason"]
    out = lab.cli("vm", "power-on", "web01")
    assert "runs on esx01" in out
    assert wait_until(lambda: lab.disk()["writes"] >= 20, 10.0) is not None
    d = lab.disk()
    assert d["carried_verified"] is True, d  # the data written on esx02, read on esx01
    assert d["io_errors"] == 0 and d["verify_failures"] == 0, d
    lab.cli("vm", "destroy", "web01")
    assert not os.path.exists(f"/run/vmknet/labs/{lab.name}/vms/web01.json")


def test_a_local_disk_is_written_and_does_not_vmotion(lab: DiskLab) -> None:
    """`[ds1] ...`: a sparse file in esx01's own datastore directory, no other host's."""
    out = lab.cli("vm", "create", "loc01", "-H", "esx01", "--memory", "16MiB", "--disk",
                  "[ds1]", "--disk-size", "16MiB", "--disk-rate", str(RATE))
    assert "[ds1] loc01/loc01-flat.vmdk (local, 16.0 MiB)" in out, out
    def show() -> dict[str, Any]:
        d: dict[str, Any] = json.loads(lab.cli("vm", "show", "loc01"))["disk"]
        return d

    assert wait_until(lambda: show()["writes"] >= 50, 10.0) is not None
    d = show()
    assert d["io_errors"] == 0 and d["verify_failures"] == 0, d
    flat = (Path(lab.env["VMKNET_DATASTORE_BASE"]) / lab.name / "esx01" / "datastores" / "ds1"
            / "loc01" / "loc01-flat.vmdk")
    assert flat.stat().st_size == 16 << 20 and flat.stat().st_blocks * 512 < 8 << 20
    code, out = lab.run("vmotion", "loc01", "--to", "esx02")
    assert code != 0 and out.strip() == ("Error [STO-5]: Host esx02 does not see the datastore"
                                         " of the VM's disk [ds1] loc01/loc01-flat.vmdk: [ds1]"
                                         " is a local datastore of esx01"), out
    lab.cli("vm", "destroy", "loc01")
