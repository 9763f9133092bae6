"""The VM's virtual disk: disk specs, the local and LUN backends, the guest's verified I/O
stream, its device state across a move, and the agent's check of a disk argument."""

from __future__ import annotations

import json
import struct
import threading
import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vmknet.errors import InvalidArgument, RuleViolation
from vmknet.model import Datacenter
from vmknet.supervise.kinds import command
from vmknet.vm.disk import (
    DEVFS,
    BlockBackend,
    DiskContext,
    DiskSpec,
    LocalFile,
    LunDisk,
    NfsDisk,
    check_host,
)
from vmknet.vm.diskio import BLOCK, DiskIo, pattern, slot_offset
from vmknet.vm.guest import Guest
from vmknet.vm.memory import GuestMemory, Workload

DEVICE = "naa.6" + "0" * 31
MiB = 1 << 20


def no_dc() -> Datacenter:
    raise AssertionError("a local disk needs no inventory")


def ctx() -> DiskContext:
    return DiskContext("lab", "esx01", no_dc)


# ------------------------------------------------------------------ specs


def test_parse_forms() -> None:
    spec = DiskSpec.parse("[nfs01] web01/web01-flat.vmdk", 64 * MiB)
    assert (spec.datastore, spec.path, spec.size, spec.kind) == (
        "nfs01", "web01/web01-flat.vmdk", 64 * MiB, "")
    assert DiskSpec.parse("[nfs01]", MiB, "db01").path == "db01/db01-flat.vmdk"
    lun = DiskSpec.parse(DEVFS + DEVICE, 0)
    assert (lun.datastore, lun.path, lun.kind) == (DEVICE, "", "iscsi")
    assert lun.text() == DEVFS + DEVICE
    assert spec.text() == "[nfs01] web01/web01-flat.vmdk"


@pytest.mark.parametrize("text", [
    "nfs01/web01.vmdk", "[nfs01] ../etc/passwd.vmdk", "[nfs01] a/b/c.vmdk",
    "[nfs01] web01/web01.txt", "[../x] a.vmdk", "[] a.vmdk", DEVFS + "naa.6xyz",
    DEVFS + "../../etc", "[nfs01] /abs.vmdk", "[nfs01]",
])
def test_parse_refuses(text: str) -> None:
    with pytest.raises(InvalidArgument):
        DiskSpec.parse(text, MiB)


def test_parse_needs_a_size_for_a_file() -> None:
    with pytest.raises(InvalidArgument, match="--disk-size"):
        DiskSpec.parse("[nfs01] a/a.vmdk", 0)
    with pytest.raises(InvalidArgument):
        DiskSpec.parse("[nfs01] a/a.vmdk", 1000)  # not in 512-byte blocks


@given(st.text(max_size=120))
@settings(max_examples=300)
def test_parse_never_escapes(text: str) -> None:
    """Whatever is given: refused in one error, or a path without '..' or a leading '/'."""
    try:
        spec = DiskSpec.parse(text, MiB, "vm1")
    except InvalidArgument:
        return
    assert ".." not in spec.path.split("/") and not spec.path.startswith("/")
    assert DiskSpec.from_dict(json.loads(json.dumps(spec.to_dict()))) == spec


def test_from_dict_refuses_junk() -> None:
    with pytest.raises(InvalidArgument):
        DiskSpec.from_dict({"datastore": "a", "bogus": 1})
    with pytest.raises(InvalidArgument):
        DiskSpec.from_dict([1, 2])


def test_a_local_disk_is_seen_by_its_own_host_only() -> None:
    spec = DiskSpec("ds1", "a/a.vmdk", MiB, "local", "/x/a/a.vmdk", "esx01")
    check_host(Datacenter(), "lab", "esx01", spec)
    with pytest.raises(RuleViolation) as err:
        check_host(Datacenter(), "lab", "esx02", spec)
    assert err.value.code == "STO-5" and "local datastore of esx01" in err.value.message


def test_an_unknown_kind_is_refused() -> None:
    with pytest.raises(RuleViolation, match="unknown"):
        check_host(Datacenter(), "lab", "esx01", DiskSpec("x", "a/a.vmdk", MiB, "tape"))


# ------------------------------------------------------------------ backends


def test_local_file_is_sparse_and_bounded(tmp_path: Path) -> None:
    disk: BlockBackend = LocalFile(str(tmp_path / "d.vmdk"), 8 * MiB)
    disk.write(MiB + 3, b"hello")
    disk.flush()
    assert disk.read(MiB, 10) == b"\0\0\0hello\0\0"
    assert (tmp_path / "d.vmdk").stat().st_size == 8 * MiB
    assert (tmp_path / "d.vmdk").stat().st_blocks * 512 < MiB  # a hole, not 8 MiB of zeros
    with pytest.raises(InvalidArgument):
        disk.read(8 * MiB - 1, 2)
    with pytest.raises(InvalidArgument):
        disk.write(-1, b"x")
    disk.close()


class FakeLun:
    """Whole blocks only, as a SCSI device: a bytearray with the NMP device's calls."""

    def __init__(self, blocks: int, block: int = 512) -> None:
        self.block, self.data = block, bytearray(blocks * block)
        self.commands: list[tuple[str, int, int]] = []
        self.closed = False

    def read(self, lba: int, blocks: int) -> bytes:
        self.commands.append(("read", lba, blocks))
        return bytes(self.data[lba * self.block:(lba + blocks) * self.block])

    def write(self, lba: int, data: bytes) -> None:
        assert len(data) % self.block == 0, "a SCSI write covers whole blocks"
        self.commands.append(("write", lba, len(data) // self.block))
        self.data[lba * self.block:lba * self.block + len(data)] = data

    def close(self) -> None:
        self.closed = True


@given(st.integers(0, 8191), st.binary(min_size=0, max_size=3000))
@settings(max_examples=200)
def test_lun_disk_reads_what_it_wrote_at_any_offset(offset: int, data: bytes) -> None:
    lun = FakeLun(32)
    disk = LunDisk(lun, 512, 16384)
    before = bytes(lun.data)
    if offset + len(data) > disk.size:
        with pytest.raises(InvalidArgument):
            disk.write(offset, data)
        return
    disk.write(offset, data)
    assert disk.read(offset, len(data)) == data
    # every other byte untouched by the read-modify-write of the edges
    assert lun.data[:offset] == before[:offset]
    assert lun.data[offset + len(data):] == before[offset + len(data):]


def test_lun_disk_splits_large_io_and_closes() -> None:
    lun = FakeLun(4096)
    disk = LunDisk(lun, 512, 2 * MiB)
    disk.write(0, b"\1" * MiB)
    assert [c for c in lun.commands if c[0] == "write"] == [
        ("write", i * 512, 512) for i in range(4)]  # 256 KiB per command
    assert disk.read(0, MiB) == b"\1" * MiB
    disk.flush()
    disk.close()
    assert lun.closed


# ------------------------------------------------------------------ the guest's stream


def local_spec(tmp_path: Path, size: int = 4 * MiB) -> DiskSpec:
    return DiskSpec("ds1", "vm/vm-flat.vmdk", size, "local", str(tmp_path / "vm-flat.vmdk"),
                    "esx01")


def wait(cond: object, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if callable(cond) and cond():
            return
        time.sleep(0.01)
    raise AssertionError("timed out")


def test_slots_stay_inside_the_disk() -> None:
    size = 4 * MiB
    offsets = {slot_offset(n, size) for n in range(1024)}
    assert len(offsets) == 1024 and max(offsets) <= size - BLOCK
    assert all(o % BLOCK == 0 for o in offsets)


def test_stream_writes_verifies_and_pauses_with_the_workload(tmp_path: Path) -> None:
    memory = GuestMemory(MiB)
    load = Workload(memory, 0)
    io = DiskIo(local_spec(tmp_path), ctx(), load, rate=200, seed=7)
    io.open()
    io.start()
    load.start()
    wait(lambda: io.writes >= 20)
    load.pause()
    io.quiesce()
    stopped = io.writes
    time.sleep(0.2)
    assert io.writes == stopped, "a stunned guest issues no disk I/O"
    assert io.reads == io.writes and io.errors == 0 and io.verify_failures == 0
    raw = (tmp_path / "vm-flat.vmdk").read_bytes()
    last = io.seq - 1
    at = slot_offset(last, 4 * MiB)
    assert raw[at:at + BLOCK] == pattern(7, last)  # on the file, not only in a cache
    load.resume()
    wait(lambda: io.writes > stopped)
    load.stop()
    io.close()
    memory.close()


def test_a_wrong_byte_is_a_verify_failure(tmp_path: Path) -> None:
    class Flaky(LocalFile):
        def read(self, offset: int, length: int) -> bytes:
            return b"\xff" * length

    memory = GuestMemory(MiB)
    load = Workload(memory, 0)
    io = DiskIo(local_spec(tmp_path), ctx(), load, rate=200)
    io.disk = Flaky(str(tmp_path / "f.vmdk"), MiB)
    io.start()
    load.start()
    wait(lambda: io.verify_failures >= 3)
    assert io.errors == 0 and "differs" in io.last_error
    load.stop()
    io.close()


def test_device_state_carries_the_disk_to_another_process(tmp_path: Path) -> None:
    """What a vMotion does: the source quiesces and sends; the target opens the same disk
    and first reads back the source's last write."""
    mem_a, mem_b = GuestMemory(MiB), GuestMemory(MiB)
    load_a, load_b = Workload(mem_a, 0), Workload(mem_b, 0)
    a = Guest("vm", "lab", "esx01", 3, mem_a, load_a)
    a.disk = DiskIo(local_spec(tmp_path), ctx(), load_a, rate=200, seed=3)
    a.disk.open()
    a.disk.start()
    load_a.start()
    wait(lambda: a.disk is not None and a.disk.writes >= 10)
    load_a.pause()
    blob = a.device_state()
    (n,) = struct.unpack_from("!I", blob)
    meta = json.loads(blob[4:4 + n])
    assert meta["disk"]["seq"] == a.disk.seq and meta["disk"]["spec"]["kind"] == "local"
    b = Guest("vm", "lab", "esx01", 3, mem_b, load_b)
    b.restore_device(blob)
    b.restore_device(blob)  # again (FT checkpoints): still one disk
    assert b.disk is not None and b.disk.seq == a.disk.seq
    assert b.disk.writes == a.disk.writes  # the counters are the VM's, not a process's
    load_b.start()
    wait(lambda: b.disk is not None and b.disk.writes >= a.disk.writes + 5)
    assert b.disk.carried is True and b.disk.errors == 0 and b.disk.verify_failures == 0
    for g, load in ((a, load_a), (b, load_b)):
        load.stop()
        assert g.disk is not None
        g.disk.close()


def test_a_disk_that_does_not_open_is_retried_and_counted(tmp_path: Path) -> None:
    memory = GuestMemory(MiB)
    load = Workload(memory, 0)
    spec = DiskSpec("ds1", "a/a.vmdk", MiB, "local", "", "esx01")  # no file: cannot open
    io = DiskIo(spec, ctx(), load, rate=50)
    io.start()
    wait(lambda: io.errors >= 1)
    assert "open" in io.last_error and io.disk is None
    closer = threading.Thread(target=io.close)
    closer.start()
    closer.join(3.0)
    assert not closer.is_alive()


# ------------------------------------------------------------------ the agent's check


def test_the_agent_accepts_a_disk_spec_and_refuses_junk() -> None:
    good = json.dumps(DiskSpec(DEVICE, "", MiB, "iscsi").to_dict())
    _, argv = command("vm", "web01", {"memory": MiB, "disk": good, "diskRate": 5,
                                      "diskSeq": 9}, "lab", "esx01")
    assert f"--disk={good}" in argv and "--disk-rate=5" in argv and "--disk-seq=9" in argv
    for bad in ({"datastore": "../x", "path": "", "size": 1, "kind": "iscsi", "location": "",
                 "owner": ""},
                {"datastore": "ds1", "path": "../../etc/x", "size": 1, "kind": "local",
                 "location": "", "owner": ""},
                {"datastore": "ds1", "path": "a/a.vmdk", "size": 1, "kind": "local",
                 "location": "rel/path", "owner": ""},
                {"datastore": "ds1", "path": "a/a.vmdk", "size": 1, "kind": "tape",
                 "location": "", "owner": ""},
                {"datastore": "ds1"}):
        with pytest.raises(InvalidArgument):
            command("vm", "web01", {"memory": MiB, "disk": json.dumps(bad)}, "lab", "esx01")


class FakeNfsFile:
    def __init__(self, size: int) -> None:
        self.data, self.flushed, self.closed = bytearray(size), 0, False

    def read(self, offset: int, length: int) -> bytes:
        return bytes(self.data[offset:offset + length])[:max(0, length - 1)]  # a short read

    def write(self, offset: int, data: bytes) -> None:
        self.data[offset:offset + len(data)] = data

    def flush(self) -> None:
        self.flushed += 1

    def close(self) -> None:
        self.closed = True


class FakeMount:
    closed = False

    def close(self) -> None:
        self.closed = True


def test_nfs_disk_bounds_pads_flushes_and_closes_file_then_mount() -> None:
    f, m = FakeNfsFile(MiB), FakeMount()
    disk: BlockBackend = NfsDisk(m, f, MiB)
    disk.write(4096, b"abc")
    assert disk.read(4096, 4) == b"abc\0"  # a short read past the data reads as zeros
    with pytest.raises(InvalidArgument):
        disk.write(MiB - 1, b"xy")
    disk.flush()
    disk.close()
    assert f.flushed == 1 and f.closed and m.closed


def test_nfs_kind_needs_the_datastore_mounted() -> None:
    spec = DiskSpec("nfs01", "a/a-flat.vmdk", MiB, "nfs")
    with pytest.raises(RuleViolation, match="does not mount NFS datastore nfs01"):
        check_host(Datacenter.model_validate({"hosts": {"esx01": {}}}), "lab", "esx01", spec)
