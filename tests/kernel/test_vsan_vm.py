"""A VM's disk on the vsanDatastore, in a real lab (the issue's demo, end to end).

web01 runs on esx04 with its disk `[vsanDatastore] web01/web01-flat.vmdk`: an FTT=1
object whose replicas are on two other hosts, so every disk I/O of the guest crosses
esx04's vSAN adapter. One replica's host is lost while the guest writes and reads back
each block: the guest sees no error and no wrong block, its longest I/O stays under 2 s;
the host returns and the object resyncs to healthy; the VM then live-migrates to a
host that sees the datastore, moving memory only, and reads its last write back there.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from kernelkit import wait_until
from labkit import lab_name
from vsankit import EXAMPLE, converged

from vmknet.cli.main import main
from vmknet.inventory import Inventory
from vmknet.traffic.stats import adapter_counters
from vmknet.vsan import directory, objects, procs

DISK = "[vsanDatastore] web01/web01-flat.vmdk"
RATE = 200  # guest disk writes per second, each read back


class Lab:
    def __init__(self, name: str, folder: Path) -> None:
        self.name, self.store = name, ["--store", str(folder / "inventory.db")]
        self.db = folder / "inventory.db"

    def run(self, *args: str) -> tuple[int, str]:
        result = CliRunner().invoke(main, [*self.store, *args])
        return result.exit_code, result.output

    def cli(self, *args: str) -> str:
        code, out = self.run(*args)
        assert code == 0, out
        return out

    def disk(self) -> dict[str, Any]:
        got: dict[str, Any] = json.loads(self.cli("vm", "show", "web01"))["disk"]
        return got


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    folder = tmp_path_factory.mktemp("vsanvm")
    it = Lab(lab_name(), folder)
    try:
        it.cli("lab", "up", str(EXAMPLE), "--name", it.name)
        it.cli("vsan", "start")
        assert wait_until(lambda: it.run("vsan", "health")[0] == 0 or None, 30) is not None
        assert wait_until(lambda: converged(it.name) or None, 15) is not None
        yield it
    finally:
        procs.stop(it.name)
        CliRunner().invoke(main, [*it.store, "lab", "down", "--name", it.name])


def test_vm_disk_on_vsan_survives_a_replica_host_and_vmotions_memory_only(lab: Lab) -> None:
    out = lab.cli("vm", "create", "web01", "-H", "esx04", "--memory", "32MiB", "--dirty-rate",
                  "1MB/s", "--disk", DISK, "--disk-size", "64MiB", "--disk-rate", str(RATE))
    assert "vsan" in out, out
    meta = objects.find(lab.name, "web01/web01-flat.vmdk")
    assert "esx04" not in {c.host for c in meta.replicas()}  # D holds no replica here
    assert wait_until(lambda: lab.disk()["writes"] >= 40 or None, 15) is not None
    dc = Inventory.open(lab.db).read()
    before = adapter_counters(dc, lab.name, "esx04")
    lost = meta.replicas()[1].host
    procs.kill(lab.name, lost)
    start = lab.disk()["writes"]
    assert wait_until(lambda: lab.disk()["writes"] >= start + 2 * RATE or None, 20)
    d = lab.disk()
    assert d["io_errors"] == 0 and d["verify_failures"] == 0, d
    assert d["max_io_ms"] <= 2000, d
    assert directory.load(lab.name, meta.uuid).health() == "reduced-availability"
    after = adapter_counters(dc, lab.name, "esx04")
    assert after["vmk1"].tx_bytes - before["vmk1"].tx_bytes > 4096 * RATE  # over vSAN
    assert after["vmk0"].tx_bytes - before["vmk0"].tx_bytes < 256 << 10  # not management
    listing = lab.cli("vsan", "object", "list")
    assert "reduced-availability" in listing and "absent" in listing, listing
    lab.cli("vsan", "start")  # the lost host's node returns
    assert wait_until(lambda: directory.load(lab.name, meta.uuid).health() == "healthy"
                      or None, 20) is not None
    assert "Total bytes left to resync: 0 B" in lab.cli("vsan", "resync", "status")
    target = meta.replicas()[0].host
    report = json.loads(lab.cli("vmotion", "web01", "--to", target, "--json"))
    assert report["result"] == "completed", report
    assert report["bytes"] < 2 * 32 << 20, report["bytes"]  # memory only (the disk: 64 MiB)
    st = json.loads(lab.cli("vm", "show", "web01"))
    assert st["host"] == target
    seq = st["disk"]["seq"]
    assert wait_until(lambda: lab.disk()["writes"] >= seq + RATE or None, 10) is not None
    assert lab.disk()["carried_verified"] is True, lab.disk()  # its last write, read there
    d = lab.disk()
    assert d["io_errors"] == 0 and d["verify_failures"] == 0, d
    lab.cli("vm", "destroy", "web01")
