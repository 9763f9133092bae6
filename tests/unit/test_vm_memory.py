"""Guest memory, the workload's mix, sizes and rates, the VM registry."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from vmknet.errors import InvalidArgument, NotFound
from vmknet.vm import registry
from vmknet.vm.memory import GuestMemory, Workload
from vmknet.vm.units import PAGE_SIZE, parse_rate, parse_size


def test_sizes_and_rates() -> None:
    assert parse_size("1GiB") == 1 << 30 and parse_size("64MiB") == 64 << 20
    assert parse_rate("50MB/s") == 50_000_000 and parse_size("4096") == 4096
    with pytest.raises(InvalidArgument):
        parse_size("lots")


def test_workload_mix_and_dirty_log() -> None:
    mem = GuestMemory(8 << 20)
    load = Workload(mem, rate=20_000_000)
    load.populate()
    zero = ~mem.pages.any(axis=1)
    assert 0.25 < zero.mean() < 0.35  # ~30% zero pages
    assert mem.take_dirty().size == 0
    load.start()
    time.sleep(0.2)
    load.pause()
    dirty = mem.take_dirty()
    assert dirty.size > 0 and load.writes > 0
    assert not zero[dirty].any(), "the workload never writes the zero pages"
    before = mem.digest()
    time.sleep(0.05)
    assert mem.digest() == before and mem.dirty_count() == 0, "a paused guest writes nothing"
    load.stop()
    mem.close()


def test_registry_roundtrip(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VMKNET_RUN_DIR", str(tmp_path))
    rec = registry.VmRecord("web01", "lab", "esx01", 123, PAGE_SIZE, 0, "/x.sock", 0.0)
    registry.save(rec)
    assert registry.load("lab", "web01") == rec and registry.records("lab") == [rec]
    registry.remove("lab", "web01", pid=999)  # moved on: not ours to forget
    assert registry.records("lab") == [rec]
    registry.remove("lab", "web01")
    with pytest.raises(NotFound):
        registry.load("lab", "web01")
    assert registry.host_encryption("lab", "esx02")
    registry.set_host_encryption("lab", "esx02", False)
    assert not registry.host_encryption("lab", "esx02")
