"""NFS 4.1 with session trunking, vmknet's own client against nfs-ganesha (issue 10).

examples/storage-lab.yaml: array01's ganesha answers on 198.18.31.100 (VLAN 31, reached by vmk4)
and 198.18.30.100 (VLAN 30, reached by vmk2). `nfs41 add -H both` is one session with a
connection to each address; I/O goes over both; one address down, it goes on over the other.
"""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from kernelkit import wait_until
from labkit import lab_name

from vmknet.cli.main import main
from vmknet.dataplane import naming
from vmknet.inventory import Inventory
from vmknet.storage import nfs, nfsc
from vmknet.storage.arrays import export_dir

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "storage-lab.yaml"
A1, A2 = "198.18.31.100", "198.18.30.100"
MB = 1 << 20


class Lab:
    def __init__(self, name: str, store: Path) -> None:
        self.name, self.store = name, ["--store", str(store)]

    def cli(self, *args: str) -> str:
        result = CliRunner().invoke(main, [*self.store, *args])
        assert result.exit_code == 0, result.output
        return result.output

    def mount(self, host: str) -> nfsc.V41Mount:
        dc = Inventory.open(Path(self.store[1])).read()
        m = nfs.open_datastore(dc, self.name, host, "vols", timeout=5.0)
        assert isinstance(m, nfsc.V41Mount)
        return m


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    it = Lab(lab_name(), tmp_path_factory.mktemp("nfs41") / "inventory.db")
    try:
        it.cli("lab", "up", str(EXAMPLE), "--name", it.name)
        it.cli("esxcli", "-H", "esx01", "storage", "nfs41", "add", "-H", f"{A1},{A2}", "-s",
               "/vols", "-v", "vols")
        yield it
    finally:
        CliRunner().invoke(main, [*it.store, "lab", "down", "--name", it.name])


def _tx(lab: Lab, vmk: str) -> int:
    ns = naming.stack_ns(lab.name, "esx01", "defaultTcpipStack")
    out = subprocess.run(["ip", "-n", ns, "-s", "-j", "link", "show", vmk],
                         capture_output=True, text=True, check=True, timeout=10).stdout
    return int(json.loads(out)[0]["stats64"]["tx"]["bytes"])


def test_nfs41_list_shows_one_session_over_both_addresses(lab: Lab) -> None:
    rows = json.loads(lab.cli("esxcli", "-H", "esx01", "storage", "nfs41", "list", "--json"))
    assert [(r["Volume Name"], r["Host(s)"], r["Vmknics"], r["Accessible"]) for r in rows] == \
        [("vols", f"{A1},{A2}", "vmk4,vmk2", True)]
    links = rows[0]["Connections"].split("; ")
    assert [c.split(":")[0] for c in links] == [f"{A1} via vmk4", f"{A2} via vmk2"]
    assert all(": session" in c for c in links), links
    fs = json.loads(lab.cli("esxcli", "-H", "esx01", "storage", "filesystem", "list", "--json"))
    assert [(r["Volume Name"], r["Type"]) for r in fs] == [("vols", "NFS41")]
    assert int(fs[0]["Size"]) >= int(fs[0]["Free"]) > 0  # from the server's space attributes


def test_io_is_spread_over_both_connections(lab: Lab) -> None:
    data = os.urandom(16 * MB)
    before = {v: _tx(lab, v) for v in ("vmk2", "vmk4")}
    m = lab.mount("esx01")
    with m:
        assert [p.up for p in m.connections()] == [True, True]
        assert 0 < m.ping() < 1.0  # SEQUENCE alone
        with m.open_file("spread.img", create=True) as f:
            f.write(0, data)
            f.flush()
            assert f.read(0, len(data)) == data
        sent = [p.sent for p in m.connections()]
        m.remove("spread.img")
    assert min(sent) >= 8, sent  # 16 WRITEs and 16 READs of 1 MiB, round robin
    grown = {v: _tx(lab, v) - before[v] for v in before}
    assert min(grown.values()) > 4 * MB, grown  # each adapter carried a share of the writes


def test_one_address_down_io_goes_on_over_the_other(lab: Lab) -> None:
    """A steady writer (256 KiB every 50 ms); A1 down for 6 s, then back."""
    array = naming.array_ns(lab.name, "array01")
    step = 256 * 1024
    chunks: list[bytes] = []
    done: list[float] = []  # when each write returned
    m = lab.mount("esx01")
    with m.open_file("failover.img", create=True) as f:
        try:
            for i in range(20):
                chunks.append(os.urandom(step))
                f.write(i * step, chunks[-1])
                done.append(time.monotonic())
                time.sleep(0.05)
            subprocess.run(["ip", "-n", array, "link", "set", "s1", "down"], check=True,
                           timeout=10)
            down = time.monotonic()
            while time.monotonic() - down < 6.0 and len(chunks) < 400:
                chunks.append(os.urandom(step))
                f.write((len(chunks) - 1) * step, chunks[-1])
                done.append(time.monotonic())
                time.sleep(0.05)
            f.flush()
            first, second = m.connections()
            assert not first.up and second.up
            gaps = [b - a - 0.05 for a, b in itertools.pairwise(done)]
            pause = max(gaps)
            assert pause <= 3.0, pause  # failover 2 s: the silent connection is dropped
            # After it, the dead address's reconnect attempts (every 2 s) do not stall I/O.
            after = gaps[gaps.index(pause) + 1:]
            assert after and max(after) < 0.5, after
            assert f.read(0, len(chunks) * step) == b"".join(chunks)
        finally:
            subprocess.run(["ip", "-n", array, "link", "set", "s1", "up"], check=True,
                           timeout=10)
        # The address back: the dropped connection is joined to the session again.
        back = wait_until(lambda: m.connections()[0].up, 30, step=0.5)
        assert back is not None, m.connections()[0].why
    m.close()
    on_array = export_dir(lab.name, "array01", "/vols") / "failover.img"
    assert on_array.read_bytes() == b"".join(chunks)  # nothing lost, nothing doubled
    print(f"NFS 4.1 I/O pause with one server address down: {pause:.2f} s, then at most "
          f"{max(after):.3f} s between writes")
