"""The array stopped during NFS I/O (ganesha killed): clear errors, no corruption, recovery when
`lab status --repair` starts it again; a killed tgtd is started again too (issue 10).

examples/storage-lab.yaml: array01 exports /share (NFS 3 here) and /vols (NFS 4.1 over
198.18.31.100 and 198.18.30.100) and serves iSCSI; esx01 mounts both with vmknet's client.
"""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from kernelkit import wait_until
from labkit import lab_name

from vmknet.cli.main import main
from vmknet.inventory import Inventory
from vmknet.processes import alive
from vmknet.storage import ganesha, nfs, tgt
from vmknet.storage.arrays import backing_file, export_dir
from vmknet.storage.nfsc import NfsError, NfsFile, NfsMount

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "storage-lab.yaml"
A1, A2 = "198.18.31.100", "198.18.30.100"
MB = 1 << 20


class Lab:
    def __init__(self, name: str, store: Path) -> None:
        self.name, self.store = name, ["--store", str(store)]

    def run(self, *args: str) -> Result:
        return CliRunner().invoke(main, [*self.store, *args])

    def cli(self, *args: str) -> str:
        result = self.run(*args)
        assert result.exit_code == 0, result.output
        return result.output

    def mount(self, name: str) -> NfsMount:
        dc = Inventory.open(Path(self.store[1])).read()
        return nfs.open_datastore(dc, self.name, "esx01", name, timeout=3.0)


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    it = Lab(lab_name(), tmp_path_factory.mktemp("nfsfaults") / "inventory.db")
    try:
        it.cli("lab", "up", str(EXAMPLE), "--name", it.name)
        it.cli("esxcli", "-H", "esx01", "storage", "nfs", "add", "-H", A1, "-s", "/share",
               "-v", "nfs01")
        it.cli("esxcli", "-H", "esx01", "storage", "nfs41", "add", "-H", f"{A1},{A2}", "-s",
               "/vols", "-v", "vols")
        yield it
    finally:
        CliRunner().invoke(main, [*it.store, "lab", "down", "--name", it.name])


def test_ganesha_killed_during_io_then_repaired(lab: Lab) -> None:
    chunks = [os.urandom(MB) for _ in range(9)]
    mounts = {"nfs01": lab.mount("nfs01"), "vols": lab.mount("vols")}
    files: dict[str, NfsFile] = {}
    for name, m in mounts.items():
        files[name] = f = m.open_file("io.img", create=True)
        for i in range(8):
            f.write(i * MB, chunks[i])  # UNSTABLE, not committed: the server may lose them
    pids = ganesha.lab_pids(lab.name)
    assert len(pids) == 1
    os.kill(pids[0], signal.SIGKILL)
    assert wait_until(lambda: not alive(pids[0]), 5, step=0.05) is not None

    for name, f in files.items():
        started = time.monotonic()
        with pytest.raises(NfsError) as failed:
            f.write(8 * MB, chunks[8])
            f.flush()
        assert time.monotonic() - started < 8.0  # bounded: connect refused or 3 s timeout
        assert "\n" not in str(failed.value) and A1 in str(failed.value), (name, failed.value)
    listed = json.loads(lab.cli("esxcli", "-H", "esx01", "storage", "nfs", "list", "--json"))
    assert [r["Accessible"] for r in listed] == [False]
    status = lab.run("lab", "status")
    assert status.exit_code == 1 and "not running: the nfs-ganesha of array01" in status.output

    repaired = lab.run("lab", "status", "--repair")
    assert repaired.exit_code == 0, repaired.output
    assert "started the nfs-ganesha of array01" in repaired.output
    assert len(ganesha.lab_pids(lab.name)) == 1
    listed = json.loads(lab.cli("esxcli", "-H", "esx01", "storage", "nfs", "list", "--json"))
    assert [r["Accessible"] for r in listed] == [True]

    # The same mounts and files go on: NFS 3 reconnects (FSAL_VFS handles survive), NFS 4.1
    # makes a new session and opens the file again; the unstable writes the restart may have
    # lost are sent again (the write verifier changed), so nothing is missing.
    for name, f in files.items():
        f.write(8 * MB, chunks[8])
        f.flush()
        assert f.read(0, 9 * MB) == b"".join(chunks), name
        f.close()
        share = "/share" if name == "nfs01" else "/vols"
        on_array = export_dir(lab.name, "array01", share) / "io.img"
        assert on_array.read_bytes() == b"".join(chunks), name
        mounts[name].remove("io.img")
        mounts[name].close()


def test_a_killed_tgtd_is_started_again_with_its_luns(lab: Lab) -> None:
    lun = backing_file(lab.name, "array01", 1, 1)
    with lun.open("r+b") as f:
        f.write(b"kept across the restart")
    pids = tgt.lab_pids(lab.name)
    assert len(pids) == 1
    os.kill(pids[0], signal.SIGKILL)
    assert wait_until(lambda: not alive(pids[0]), 5, step=0.05) is not None
    status = lab.run("lab", "status")
    assert status.exit_code == 1 and "not running: the tgtd of array01" in status.output
    repaired = lab.run("lab", "status", "--repair")
    assert repaired.exit_code == 0, repaired.output
    assert len(tgt.lab_pids(lab.name)) == 1
    assert lun.read_bytes()[:23] == b"kept across the restart"
    lab.cli("esxcli", "-H", "esx01", "iscsi", "adapter", "discovery", "sendtarget", "add",
            "-A", "vmhba64", "-a", f"{A2}:3260")
    lab.cli("esxcli", "-H", "esx01", "storage", "core", "adapter", "rescan", "-A", "vmhba64")
    paths = json.loads(lab.cli("esxcli", "-H", "esx01", "storage", "core", "path", "list",
                               "--json"))
    assert paths and all(p["State"] == "active" for p in paths), paths
