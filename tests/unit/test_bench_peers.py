"""The pure parts of the benches' peers: QEMU's migration rows and the rsync/cold rows."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

import bench_nfc
import bench_vmotion
import qemu_peer


def test_qemu_throughput_leaves_out_the_setup() -> None:
    r = qemu_peer.QemuResult(channels=4, transferred=1 << 30, total_ms=1100.0,
                             downtime_ms=50.0, setup_ms=100.0)
    assert r.mbit == pytest.approx((1 << 30) * 8 / 1.0 / 1e6)
    assert qemu_peer.QemuResult(1, 10, 5.0, 0.0, 5.0).mbit == 0.0


def test_qemu_argv_runs_in_the_namespace_with_the_memory_asked() -> None:
    src = qemu_peer._argv("ns-a", Path("/t/s.qmp"), 1024, Path("/t/ram"), incoming=False)
    dst = qemu_peer._argv("ns-b", Path("/t/d.qmp"), 1024, None, incoming=True)
    assert src[:4] == ["ip", "netns", "exec", "ns-a"] and "accel=tcg" in " ".join(src)
    assert "mem-path=/t/ram,share=on" in " ".join(src) and "-incoming" not in src
    assert dst[-2:] == ["-incoming", "defer"] and "memory-backend-ram" in " ".join(dst)
    assert "size=1024M" in " ".join(src) and "size=1024M" in " ".join(dst)


def test_missing_peers_are_skipped_without_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(qemu_peer.shutil, "which", lambda name: None)
    monkeypatch.setattr(bench_nfc.shutil, "which", lambda name: None)
    assert qemu_peer.ensure_qemu(install=False) == "skipped: qemu not installed"
    assert bench_nfc.ensure_rsync(install=False) == "skipped: rsync not installed"


def test_qemu_part_runs_in_the_single_lab_and_smoke() -> None:
    opts, _ = bench_vmotion.parse_args([])
    single = [parts for spec, parts in bench_vmotion.lab_jobs(opts).items()
              if spec.speed_mbit == opts.single_mbit]
    assert single == [["single", "crypto", "qemu"]]
    smoke, _ = bench_vmotion.parse_args(["--smoke"])
    assert "qemu" in next(iter(bench_vmotion.lab_jobs(smoke).values()))


def test_rsync_rows_say_which_is_faster() -> None:
    opts, _ = bench_nfc.parse_args([])
    rows = bench_nfc._rsync_rows("NIC", opts, nfc=1.0, rsync=2.0)
    assert rows[1].ratio == 2.0 and rows[1].meets_aim
    assert bench_nfc._rsync_rows("NIC", opts, nfc=2.0, rsync=1.0)[1].meets_aim is False
    assert bench_nfc._rsync_rows("NIC", opts, 1.0, "skipped: rsync not installed")[0].note \
        == "skipped: rsync not installed"
    assert bench_nfc._rsync_rows("NIC", opts, 1.0, None) == []
