"""vmknet's own NFS 3 client (storage/nfsc) against the real server, nfs-ganesha (issue 10).

examples/storage-lab.yaml: array01 exports /share on 198.18.31.100 (VLAN 31); esx01 and esx02
reach it by vmk4 only. Each datastore is mounted through `nfs.open_datastore`, the API the
other engines use, so the client's socket is made in the host's default stack and bound
to vmk4.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from labkit import lab_name

from vmknet.cli.main import main
from vmknet.dataplane import naming
from vmknet.inventory import Inventory
from vmknet.model import Datacenter
from vmknet.storage import nfs, nfsc
from vmknet.storage.arrays import export_dir
from vmknet.storage.nfsc import NfsError, NfsMount
from vmknet.storage.nfsc.errors import NfsExists, NfsNotFound, NfsPathError, NfsStatusError

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "storage-lab.yaml"
SERVER = "198.18.31.100"
MB = 1 << 20


class Lab:
    def __init__(self, name: str, store: Path) -> None:
        self.name, self.store = name, ["--store", str(store)]

    def cli(self, *args: str) -> str:
        result = CliRunner().invoke(main, [*self.store, *args])
        assert result.exit_code == 0, result.output
        return result.output

    def dc(self) -> Datacenter:
        return Inventory.open(Path(self.store[1])).read()

    def mount(self, host: str) -> NfsMount:
        return nfs.open_datastore(self.dc(), self.name, host, "nfs01", timeout=5.0)


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    it = Lab(lab_name(), tmp_path_factory.mktemp("nfsc") / "inventory.db")
    try:
        it.cli("lab", "up", str(EXAMPLE), "--name", it.name)
        for host in ("esx01", "esx02"):
            it.cli("esxcli", "-H", host, "storage", "nfs", "add", "-H", SERVER, "-s", "/share",
                   "-v", "nfs01")
        yield it
    finally:
        CliRunner().invoke(main, [*it.store, "lab", "down", "--name", it.name])


def _vmk_bytes(lab: Lab, host: str, vmk: str) -> tuple[int, int]:
    ns = naming.stack_ns(lab.name, host, "defaultTcpipStack")
    out = subprocess.run(["ip", "-n", ns, "-s", "-j", "link", "show", vmk],
                         capture_output=True, text=True, check=True, timeout=10).stdout
    stats = json.loads(out)[0]["stats64"]
    return int(stats["rx"]["bytes"]), int(stats["tx"]["bytes"])


def test_a_disk_written_by_one_host_is_read_by_the_other_through_vmk4(lab: Lab) -> None:
    data = os.urandom(8 * MB)
    before = {(h, v): _vmk_bytes(lab, h, v) for h in ("esx01", "esx02")
              for v in ("vmk0", "vmk2", "vmk3", "vmk4")}
    with lab.mount("esx01") as m:
        m.mkdir("vm1", exist_ok=True)
        with m.open_file("vm1/disk.img", create=True, size=16 * MB) as f:
            assert f.size == 16 * MB  # sparse, as a thin disk
            f.write(MB + 3, data)  # unaligned, larger than one WRITE: several in flight
            f.flush()  # COMMIT: durable
    with lab.mount("esx02") as m, m.open_file("vm1/disk.img") as f:
        assert f.size == 16 * MB
        assert f.read(MB + 3, len(data)) == data
        assert f.read(0, 16) == b"\0" * 16  # the hole reads as zeros
        assert f.read(16 * MB - 5, 100) == b"\0" * 5  # short only at the end of the file
    on_array = export_dir(lab.name, "array01", "/share") / "vm1" / "disk.img"
    with on_array.open("rb") as raw:
        raw.seek(MB + 3)
        assert raw.read(len(data)) == data  # in the array's file, at the right offset
    after = {k: _vmk_bytes(lab, *k) for k in before}
    grown = {k: (after[k][0] - before[k][0], after[k][1] - before[k][1]) for k in before}
    assert grown[("esx01", "vmk4")][1] > len(data), grown  # sent by esx01's vmk4
    assert grown[("esx02", "vmk4")][0] > len(data), grown  # received by esx02's vmk4
    for k, (rx, tx) in grown.items():
        if k[1] != "vmk4":
            assert rx + tx < 64 * 1024, (k, grown)


def test_small_files_directories_and_statfs(lab: Lab) -> None:
    folder = export_dir(lab.name, "array01", "/share")
    with lab.mount("esx01") as m:
        m.mkdir("hb", exist_ok=True)
        m.write_file("hb/esx01", b"beat 1 and a long tail")
        m.write_file("hb/esx01", b"beat 2")  # replaced, the tail cut
        assert (folder / "hb" / "esx01").read_bytes() == b"beat 2"
        (folder / "hb" / "by-array").write_bytes(b"x" * 5000)
        assert m.read_file("hb/by-array") == b"x" * 5000
        assert m.listdir("hb") == ["by-array", "esx01"]
        assert "hb" in m.listdir("/")
        with pytest.raises(NfsError, match="more than the 100"):
            m.read_file("hb/by-array", limit=100)
        m.remove("hb/by-array")
        assert not m.exists("hb/by-array") and m.exists("hb/esx01")
        with pytest.raises(NfsExists):
            m.mkdir("hb")
        with pytest.raises(NfsNotFound) as missing:
            m.open_file("hb/nothing")
        assert missing.value.code == "NotFound"
        with pytest.raises(NfsError, match="NOTEMPTY"):
            m.remove("hb")
        m.remove("hb/esx01")
        m.remove("hb")
        assert not (folder / "hb").exists()
        assert 0 < m.ping() < 1.0  # NULL
        fs, local = m.statfs(), os.statvfs(folder)
        assert fs.total == local.f_blocks * local.f_frsize  # the array's file system
        assert 0 < fs.avail <= fs.free <= fs.total


def test_paths_never_leave_the_export(lab: Lab) -> None:
    outside = export_dir(lab.name, "array01", "/vols")
    (outside / "secret").write_bytes(b"other export")
    with lab.mount("esx01") as m:
        for path in ("../vols/secret", "a/../../vols/secret", "./x", "a//b"):
            with pytest.raises(NfsPathError) as refused:
                m.read_file(path)
            assert refused.value.code == "InvalidArgument"
    (outside / "secret").unlink()


def test_a_server_that_is_not_there_fails_within_the_timeout(lab: Lab) -> None:
    dc = lab.dc()
    where = nfs.reach(dc, lab.name, "esx01", SERVER)
    started = time.monotonic()
    with pytest.raises(NfsError) as failed:
        nfsc.mount("198.18.31.99", "/share", 3, where.bind(), timeout=1.0)
    assert time.monotonic() - started < 3.0
    assert "198.18.31.99" in str(failed.value) and "vmk4" in str(failed.value)
    with pytest.raises(NfsStatusError, match="MNT3ERR_ACCES"):  # ganesha's answer to no such export
        nfsc.mount(SERVER, "/nothing", 3, where.bind(), timeout=2.0)
