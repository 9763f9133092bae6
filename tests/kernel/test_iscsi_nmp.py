"""Native multipathing for real (STO-4): the PSP of a device picks the path of each I/O.

examples/iscsi-lab.yaml: esx01 binds vmk2 (vmnic2) and vmk3 (vmnic3) to vmhba64, so
each LUN of array01's tgtd has two paths, C0 over vmk2 and C1 over vmk3. vmknet's
initiator holds one session per path; the interface counters of vmk2 and vmk3 say
which path carried the bytes.
"""

from __future__ import annotations

import json
import os
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner
from kernelkit import wait_until
from labkit import lab_name

from vmknet.cli.main import main
from vmknet.dataplane import naming
from vmknet.inventory import Inventory
from vmknet.model import Datacenter
from vmknet.storage import nmp
from vmknet.storage.paths import device_id

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "iscsi-lab.yaml"
PORTAL = "198.18.30.100:3260"
IQN = "iqn.2026-11.com.example:array01.ds01"
HOST = "esx01"
DEVICE = device_id(IQN, 1)
MB = 1 << 20
CHUNK = 64 * 1024


@dataclass
class NmpLab:
    name: str
    store: list[str]

    def cli(self, *args: str) -> str:
        result = CliRunner().invoke(main, [*self.store, *args])
        assert result.exit_code == 0, result.output
        return result.output

    def esxcli(self, *args: str) -> str:
        return self.cli("esxcli", "-H", HOST, *args)

    def dc(self) -> Datacenter:
        return Inventory.open(Path(self.store[1])).read()

    def nmp_device(self) -> dict[str, object]:
        rows = json.loads(self.esxcli("storage", "nmp", "device", "list", "-d", DEVICE, "--json"))
        assert len(rows) == 1, rows
        row: dict[str, object] = rows[0]
        return row

    def states(self) -> dict[str, str]:
        rows = json.loads(self.esxcli("storage", "core", "path", "list", "-d", DEVICE, "--json"))
        return {str(r["Runtime Name"]): str(r["State"]) for r in rows}


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NmpLab]:
    name = lab_name()
    store = ["--store", str(tmp_path_factory.mktemp("nmp") / "inventory.db")]
    it = NmpLab(name, store)
    try:
        it.cli("lab", "up", str(EXAMPLE), "--name", name)
        it.esxcli("iscsi", "adapter", "discovery", "sendtarget", "add", "-A", "vmhba64",
                  "-a", PORTAL)
        it.esxcli("storage", "core", "adapter", "rescan", "-A", "vmhba64")
        yield it
    finally:
        CliRunner().invoke(main, [*store, "lab", "down", "--name", name])


def _bytes(lab: NmpLab) -> dict[str, int]:
    """rx + tx bytes of vmk2 and vmk3 of esx01."""
    ns = naming.stack_ns(lab.name, HOST, "defaultTcpipStack")
    out = {}
    for vmk in ("vmk2", "vmk3"):
        text = subprocess.run(["ip", "-n", ns, "-s", "-j", "link", "show", vmk],
                              capture_output=True, text=True, check=True, timeout=10).stdout
        stats = json.loads(text)[0]["stats64"]
        out[vmk] = int(stats["rx"]["bytes"]) + int(stats["tx"]["bytes"])
    return out


def _moved(lab: NmpLab, work: int = 2 * MB) -> dict[str, int]:
    """Write then read `work` bytes through the device; the bytes each adapter carried."""
    before = _bytes(lab)
    data = os.urandom(CHUNK)
    with nmp.open_device(lab.dc(), lab.name, HOST, DEVICE) as dev:
        for n in range(work // CHUNK):
            dev.write(lba=n * CHUNK // 512, data=data)
        for n in range(work // CHUNK):
            assert dev.read(lba=n * CHUNK // 512, blocks=CHUNK // 512) == data
        assert dev.failovers == []
    after = _bytes(lab)
    return {vmk: after[vmk] - before[vmk] for vmk in after}


def test_nmp_device_list_shows_the_default_policy(lab: NmpLab) -> None:
    row = lab.nmp_device()
    assert row["Storage Array Type"] == "VMW_SATP_DEFAULT_AA"
    assert row["Path Selection Policy"] == "VMW_PSP_FIXED"
    assert row["Working Paths"] == ["vmhba64:C0:T0:L1"]
    assert "preferred=vmhba64:C0:T0:L1" in str(row["Path Selection Policy Device Config"])
    text = lab.esxcli("storage", "nmp", "device", "list")
    assert f"{DEVICE}\n   Device Display Name: IET iSCSI Disk ({DEVICE})\n" in text
    assert "   Path Selection Policy: VMW_PSP_FIXED" in text


def test_an_unknown_device_or_policy_is_refused(lab: NmpLab) -> None:
    result = CliRunner().invoke(main, [*lab.store, "esxcli", "-H", HOST, "storage", "nmp",
                                       "device", "set", "-d", "naa.600", "-P", "VMW_PSP_RR"])
    assert result.exit_code != 0 and "Unknown device naa.600" in result.output
    result = CliRunner().invoke(main, [*lab.store, "esxcli", "-H", HOST, "storage", "nmp",
                                       "device", "set", "-d", DEVICE, "-P", "VMW_PSP_XX"])
    assert result.exit_code != 0


def test_round_robin_moves_bytes_over_both_bound_adapters(lab: NmpLab) -> None:
    lab.esxcli("storage", "nmp", "device", "set", "-d", DEVICE, "--psp", "VMW_PSP_RR")
    lab.esxcli("storage", "nmp", "psp", "roundrobin", "deviceconfig", "set", "-d", DEVICE,
               "-t", "iops", "-I", "4")
    row = lab.nmp_device()
    assert row["Path Selection Policy"] == "VMW_PSP_RR"
    assert row["Working Paths"] == ["vmhba64:C0:T0:L1", "vmhba64:C1:T0:L1"]
    assert "iops=4," in str(row["Path Selection Policy Device Config"])
    moved = _moved(lab)
    # 4 MB of payload, every 4 I/Os on the other path: about half on each adapter.
    assert moved["vmk2"] > 1.5 * MB and moved["vmk3"] > 1.5 * MB, moved


def test_most_recently_used_stays_on_one_adapter(lab: NmpLab) -> None:
    lab.esxcli("storage", "nmp", "device", "set", "-d", DEVICE, "--psp", "VMW_PSP_MRU")
    assert lab.nmp_device()["Working Paths"] == ["vmhba64:C0:T0:L1"]
    moved = _moved(lab)
    assert moved["vmk2"] > 4 * MB and moved["vmk3"] < 64 * 1024, moved


def test_fixed_uses_the_preferred_path(lab: NmpLab) -> None:
    lab.esxcli("storage", "nmp", "device", "set", "-d", DEVICE, "--psp", "VMW_PSP_FIXED")
    lab.esxcli("storage", "nmp", "psp", "fixed", "deviceconfig", "set", "-d", DEVICE,
               "-p", "vmhba64:C1:T0:L1")
    assert lab.nmp_device()["Working Paths"] == ["vmhba64:C1:T0:L1"]
    moved = _moved(lab)
    assert moved["vmk3"] > 4 * MB and moved["vmk2"] < 64 * 1024, moved
    lab.esxcli("storage", "nmp", "psp", "fixed", "deviceconfig", "set", "-d", DEVICE, "-E")


def test_a_dead_path_moves_io_to_the_live_one_without_an_error(lab: NmpLab) -> None:
    """MRU on C0 (vmk2); vmnic2 goes down during I/O: the I/O goes on over C1 (vmk3)."""
    lab.esxcli("storage", "nmp", "device", "set", "-d", DEVICE, "--psp", "VMW_PSP_MRU")
    dev = nmp.open_device(lab.dc(), lab.name, HOST, DEVICE)
    errors: list[BaseException] = []
    written: list[bytes] = []
    stop = threading.Event()

    def load() -> None:  # the VM's disk: writes and read-backs, never an error
        try:
            n = 0
            while not stop.is_set() and n < 4000:
                data = os.urandom(CHUNK)
                dev.write(lba=n * CHUNK // 512, data=data)
                assert dev.read(lba=n * CHUNK // 512, blocks=CHUNK // 512) == data
                written.append(data)
                n += 1
        except BaseException as err:  # handed to the test thread
            errors.append(err)

    worker = threading.Thread(target=load, daemon=True)
    try:
        worker.start()
        assert wait_until(lambda: len(written) >= 20, 10, step=0.05)
        assert dev.ios[1] == 0  # all on C0 so far
        before = _bytes(lab)
        lab.esxcli("network", "nic", "down", "-n", "vmnic2")
        downed = time.monotonic()
        assert wait_until(lambda: bool(dev.failovers) or bool(errors), 10, step=0.05)
        done = len(written)
        assert wait_until(lambda: len(written) >= done + 20 or bool(errors), 10, step=0.05)
        assert errors == []
        path, pause = dev.failovers[0]
        assert path == "vmhba64:C0:T0:L1" and pause <= 2.0, dev.failovers
        print(f"failover pause {pause:.3f} s")  # docs/storage.md quotes it (pytest -s)
        assert time.monotonic() - downed < 10
        grown = {k: v - before[k] for k, v in _bytes(lab).items()}
        assert grown["vmk3"] > 20 * CHUNK, grown
        states = lab.states()
        assert states == {"vmhba64:C0:T0:L1": "dead", "vmhba64:C1:T0:L1": "active"}
        assert lab.nmp_device()["Working Paths"] == ["vmhba64:C1:T0:L1"]
    finally:
        lab.esxcli("network", "nic", "up", "-n", "vmnic2")
        stop.set()
        worker.join(timeout=20)
    try:
        # The path comes back (STP listening and learning first); MRU stays on C1.
        assert wait_until(lambda: dev.alive() == [True, True], 30, step=0.5)
        c1 = dev.ios[1]
        data = os.urandom(CHUNK)
        dev.write(lba=0, data=data)
        assert dev.read(lba=0, blocks=CHUNK // 512) == data
        assert dev.ios[1] == c1 + 2 and len(dev.failovers) == 1
    finally:
        dev.close()
    assert errors == [] and len(written) > 40
    assert wait_until(lambda: set(lab.states().values()) == {"active"}, 30, step=0.5)


def test_nmp_path_list_and_the_round_robin_settings(lab: NmpLab) -> None:
    lab.esxcli("storage", "nmp", "device", "set", "-d", DEVICE, "--default")
    rows = json.loads(lab.esxcli("storage", "nmp", "path", "list", "-d", DEVICE, "--json"))
    assert [(r["Runtime Name"], r["Group State"], r["Path Selection Policy Path Config"])
            for r in rows] == [
        ("vmhba64:C0:T0:L1", "active", "{current: yes; preferred: yes}"),
        ("vmhba64:C1:T0:L1", "active", "{current: no}")]
    text = lab.esxcli("storage", "nmp", "path", "list", "-p", "vmhba64:C1:T0:L1")
    assert text.startswith("iqn.1998-01.com.vmware:esx01-") and "   Group State: active" in text
    lab.esxcli("storage", "nmp", "device", "set", "-d", DEVICE, "--psp", "VMW_PSP_RR")
    lab.esxcli("storage", "nmp", "psp", "roundrobin", "deviceconfig", "set", "-d", DEVICE,
               "-t", "iops", "-I", "7")
    got = json.loads(lab.esxcli("storage", "nmp", "psp", "roundrobin", "deviceconfig", "get",
                                "-d", DEVICE, "--json"))
    assert got[0]["IOOperation Limit"] == 7 and got[0]["Limit Type"] == "Iops"
    assert lab.dc().host(HOST).storage.nmp[DEVICE].iops == 7  # kept in the inventory
    lab.esxcli("storage", "nmp", "device", "set", "-d", DEVICE, "--default")
    assert DEVICE not in lab.dc().host(HOST).storage.nmp
    assert lab.nmp_device()["Path Selection Policy"] == "VMW_PSP_FIXED"


def _portals(lab: NmpLab) -> dict[str, dict[str, object]]:
    rows = json.loads(lab.esxcli("iscsi", "networkportal", "list", "--json"))
    return {str(r["Vmknic"]): r for r in rows}


def test_networkportal_list_is_checked_live(lab: NmpLab) -> None:
    """Port binding compliance and path status from the kernel, as ESXi shows them."""
    rows = _portals(lab)
    assert {v: (r["Compliant Status"], r["Link Up"], r["Path Status"])
            for v, r in rows.items()} == {"vmk2": ("compliant", True, "active"),
                                          "vmk3": ("compliant", True, "active")}
    assert all(int(str(r["Tx Packets"])) > 0 for r in rows.values())
    lab.esxcli("network", "nic", "down", "-n", "vmnic3")
    try:
        rows = _portals(lab)
        assert (rows["vmk3"]["Compliant Status"], rows["vmk3"]["Link Up"],
                rows["vmk3"]["Path Status"]) == ("non-compliant", False, "dead")
        assert rows["vmk3"]["NonCompliant Message"] == "vmk3's active uplink vmnic3 has no link"
        # vmk2 now carries the only live paths: unbinding it would lose the device.
        assert (rows["vmk2"]["Compliant Status"], rows["vmk2"]["Path Status"]) == (
            "compliant", "last path")
    finally:
        lab.esxcli("network", "nic", "up", "-n", "vmnic3")
    assert wait_until(lambda: _portals(lab)["vmk3"]["Path Status"] == "active", 30, step=0.5)
    assert _portals(lab)["vmk3"]["Compliant Status"] == "compliant"
