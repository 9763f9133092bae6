"""NFS datastores for real: nfs-ganesha (with its own rpcbind) in the array's namespace; on the
hosts vmknet's own client (mount tests) and libnfs (nfs-cp), bound to the adapter that reaches
the server (issue 10).

examples/storage-lab.yaml: array01 exports /share and /vols on 198.18.31.100 (VLAN 31);
esx01 and esx02 reach it by vmk4 (198.18.31.11 and .12), their only adapter in that subnet.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from kernelkit import wait_until
from labkit import lab_name

from vmknet.cli.main import main
from vmknet.dataplane import naming
from vmknet.dataplane.linux import netns
from vmknet.inventory import Inventory
from vmknet.lab.registry import run_dir
from vmknet.model import Datacenter
from vmknet.processes import alive
from vmknet.storage import ganesha, nfs
from vmknet.storage.arrays import export_dir

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "storage-lab.yaml"
SERVER = "198.18.31.100"
HOSTS = ("esx01", "esx02")
MB = 1 << 20


@dataclass
class NfsLab:
    name: str
    store: list[str]

    def run(self, *args: str) -> Result:
        return CliRunner().invoke(main, [*self.store, *args])

    def cli(self, *args: str) -> str:
        result = self.run(*args)
        assert result.exit_code == 0, result.output
        return result.output

    def esxcli(self, host: str, *args: str) -> str:
        return self.cli("esxcli", "-H", host, *args)

    def dc(self) -> Datacenter:
        return Inventory.open(Path(self.store[1])).read()


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NfsLab]:
    name = lab_name()
    store = ["--store", str(tmp_path_factory.mktemp("nfs") / "inventory.db")]
    it = NfsLab(name, store)
    try:
        it.cli("lab", "up", str(EXAMPLE), "--name", name)
        yield it
    finally:
        CliRunner().invoke(main, [*store, "lab", "down", "--name", name])


def _counters(lab: NfsLab, host: str, vmk: str) -> tuple[int, int]:
    ns = naming.stack_ns(lab.name, host, "defaultTcpipStack")
    out = subprocess.run(["ip", "-n", ns, "-s", "-j", "link", "show", vmk],
                         capture_output=True, text=True, check=True, timeout=10).stdout
    stats = json.loads(out)[0]["stats64"]
    return int(stats["rx"]["bytes"]), int(stats["tx"]["bytes"])


def test_the_array_serves_nfs_3_with_a_portmapper_of_its_own(lab: NfsLab) -> None:
    ns = naming.array_ns(lab.name, "array01")
    assert len(ganesha.lab_pids(lab.name)) == 1
    names = {Path(os.readlink(f"/proc/{p}/exe")).name for p in ganesha.ns_pids(ns)}
    assert {"ganesha.nfsd", "rpcbind"} <= names
    client = naming.stack_ns(lab.name, "esx01", "defaultTcpipStack")
    listed = subprocess.run(["ip", "netns", "exec", client, "rpcinfo", "-p", SERVER],
                            capture_output=True, text=True, timeout=10, check=True).stdout
    assert any(" 3   tcp   2049  nfs" in line for line in listed.splitlines()), listed
    assert "mountd" in listed


def test_nfs3_datastores_are_mounted_through_the_adapter_that_reaches_the_server(
        lab: NfsLab) -> None:
    for host in HOSTS:
        lab.esxcli(host, "storage", "nfs", "add", "-H", SERVER, "-s", "/share", "-v", "nfs01")
        rows = json.loads(lab.esxcli(host, "storage", "nfs", "list", "--json"))
        assert [(r["Volume Name"], r["Host"], r["Share"], r["Vmknic"], r["Accessible"])
                for r in rows] == [("nfs01", SERVER, "/share", "vmk4", True)]
    text = lab.esxcli("esx01", "storage", "nfs", "list")
    assert text.splitlines()[0].split()[:4] == ["Volume", "Name", "Host", "Share"]


def test_a_file_written_by_one_host_is_read_by_the_other_over_vmk4(
        lab: NfsLab, tmp_path: Path) -> None:
    dc = lab.dc()
    data = os.urandom(4 * MB)
    src, back = tmp_path / "disk.vmdk", tmp_path / "back.vmdk"
    src.write_bytes(data)
    watched = [(h, v) for h in HOSTS for v in ("vmk0", "vmk2", "vmk3", "vmk4")]
    before = {k: _counters(lab, *k) for k in watched}
    nfs.write(dc, lab.name, "esx01", "nfs01", "disk.vmdk", src)
    nfs.read(dc, lab.name, "esx02", "nfs01", "disk.vmdk", back)
    assert back.read_bytes() == data  # shared: esx02 reads what esx01 wrote
    on_array = export_dir(lab.name, "array01", "/share") / "disk.vmdk"
    assert on_array.read_bytes() == data  # on the array's disk, through ganesha's FSAL_VFS
    grown = {k: tuple(a - b for a, b in zip(_counters(lab, *k), before[k], strict=True))
             for k in watched}
    assert grown[("esx01", "vmk4")][1] > len(data), grown  # esx01 sent it by vmk4
    assert grown[("esx02", "vmk4")][0] > len(data), grown  # esx02 received it by vmk4
    for k in watched:
        if k[1] != "vmk4":
            assert sum(grown[k]) < 64 * 1024, (k, grown)


def test_one_export_is_never_mounted_as_both_3_and_41(lab: NfsLab) -> None:
    refused = lab.run("esxcli", "-H", "esx02", "storage", "nfs41", "add", "-H", SERVER,
                      "-s", "/share", "-v", "nfs41a")
    assert refused.exit_code != 0
    assert "mounted with NFS 3 as nfs01 on esx01" in refused.output and "STO-2" in refused.output
    lab.esxcli("esx02", "storage", "nfs41", "add", "-H", SERVER, "-s", "/vols", "-v", "vols")
    rows = json.loads(lab.esxcli("esx02", "storage", "nfs41", "list", "--json"))
    assert [(r["Volume Name"], r["Host(s)"], r["Accessible"], r["Connections"])
            for r in rows] == [("vols", SERVER, True, f"{SERVER} via vmk4: session")]
    refused = lab.run("esxcli", "-H", "esx01", "storage", "nfs", "add", "-H", SERVER,
                      "-s", "/vols", "-v", "vols3")
    assert refused.exit_code != 0 and "STO-2" in refused.output


def test_a_mount_that_fails_is_refused(lab: NfsLab) -> None:
    refused = lab.run("esxcli", "-H", "esx01", "storage", "nfs", "add", "-H", SERVER,
                      "-s", "/nothing", "-v", "nope")
    assert refused.exit_code != 0
    assert refused.output.count("\n") == 1 and "NFS mount 198.18.31.100:/nothing failed" in \
        refused.output
    assert "nope" not in lab.esxcli("esx01", "storage", "nfs", "list")


def test_filesystem_list_shows_the_nfs_datastores(lab: NfsLab) -> None:
    rows = json.loads(lab.esxcli("esx02", "storage", "filesystem", "list", "--json"))
    assert sorted((r["Volume Name"], r["Type"], r["Mounted"]) for r in rows) == [
        ("nfs01", "NFS", True), ("vols", "NFS41", True)]
    assert all(str(r["Mount Point"]) == f"/vmfs/volumes/{r['UUID']}" for r in rows)
    assert all(int(r["Size"]) >= int(r["Free"]) > 0 for r in rows)
    same = json.loads(lab.esxcli("esx01", "storage", "filesystem", "list", "--json"))
    assert {r["UUID"] for r in same} < {r["UUID"] for r in rows}  # nfs01: one UUID on both
    lab.esxcli("esx02", "storage", "nfs41", "remove", "-v", "vols")
    assert "vols" not in lab.esxcli("esx02", "storage", "filesystem", "list")


def test_lab_down_leaves_no_nfs_server_portmapper_or_export(lab: NfsLab) -> None:
    ours = ganesha.ns_pids(naming.array_ns(lab.name, "array01"))  # ganesha, rpcbind, tgtd
    assert len(ours) >= 3
    lab.cli("lab", "down", "--name", lab.name)
    assert ganesha.lab_pids(lab.name) == []
    assert not any(alive(p) for p in ours)
    assert not os.path.exists(run_dir() / lab.name)
    assert netns.listed(naming.prefix(lab.name)) == []


def _rpcbind_of(ns: str) -> list[int]:
    return [p for p in ganesha.ns_pids(ns) if os.path.basename(os.readlink(f"/proc/{p}/exe"))
            == "rpcbind"]


def test_down_after_a_killed_up_still_stops_the_nfs_server(tmp_path: Path) -> None:
    name = lab_name()
    store = ["--store", str(tmp_path / "crashed.db")]
    up = subprocess.Popen([sys.executable, "-m", "vmknet.cli.main", *store, "lab", "up",
                           str(EXAMPLE), "--name", name],
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        # Killed once ganesha runs (tgtd and STP on the storage ports come after it).
        assert wait_until(lambda: bool(ganesha.lab_pids(name)), 30, step=0.02) is not None
    finally:
        up.send_signal(signal.SIGKILL)
        up.wait(timeout=10)
    assert ganesha.lab_pids(name)  # it outlives the killed `lab up`: its own session
    rpcbind = _rpcbind_of(naming.array_ns(name, "array01"))
    assert len(rpcbind) == 1
    result = CliRunner().invoke(main, [*store, "lab", "down", "--name", name])
    assert result.exit_code == 0, result.output
    assert ganesha.lab_pids(name) == []
    assert not alive(rpcbind[0])
    assert not os.path.exists(run_dir() / name)
    assert netns.listed(naming.prefix(name)) == []
