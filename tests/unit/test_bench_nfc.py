"""The pure parts of bench/bench_nfc.py: the lab file, the sparse/dense file makers, the table."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

import bench_nfc
from bench_nfc import NfcLabSpec, Row, data_bytes, make_dense, make_sparse
from bench_vmotion import format_table
from vmknet.inventory import Inventory
from vmknet.model import PROVISIONING_STACK, Service
from vmknet.resolve import resolve
from vmknet.rules.lint import lint
from vmknet.state import loads

MIB = 1 << 20


@pytest.mark.parametrize("spec", [NfcLabSpec(), NfcLabSpec(10000), NfcLabSpec(1000, 1500)],
                         ids=lambda s: f"{s.speed_mbit}-{s.mtu}")
def test_lab_file_validates_and_lints_clean(spec: NfcLabSpec) -> None:
    dc = loads(bench_nfc.lab_yaml(spec))
    assert dc == bench_nfc.datacenter(spec)
    assert Inventory.validate(dc) == []
    assert lint(dc) == []
    addresses = [str(a.ip) for h in dc.hosts.values() for v in h.vmknics.values()
                 if v.ipv4 and (a := v.ipv4.address)]
    assert all(a.startswith("198.18.") for a in addresses)  # LAB.md
    assert len(set(addresses)) == len(addresses)


def test_the_pair_is_what_resolve_picks_for_provisioning() -> None:
    dc = bench_nfc.datacenter(NfcLabSpec())
    (flow,) = resolve(dc, Service.PROVISIONING, "esx01", "esx02")
    p = bench_nfc.pair()
    assert (flow.source.vmknic, flow.target.vmknic) == (p.source_vmk, p.target_vmk)
    assert (flow.source.address.ip, flow.target.address.ip) == (p.source, p.target)
    assert flow.source.netstack == flow.target.netstack == PROVISIONING_STACK


def test_spec_bounds() -> None:
    with pytest.raises(ValueError):
        NfcLabSpec(speed_mbit=1)
    with pytest.raises(ValueError):
        NfcLabSpec(mtu=9500)


def test_sparse_maker_writes_the_intended_data(tmp_path: Path) -> None:
    path = tmp_path / "d" / "sparse.vmdk"
    assert make_sparse(path, 64 * MIB, 8 * MIB) == 8 * MIB
    assert path.stat().st_size == 64 * MIB
    assert data_bytes(path) == 8 * MIB
    assert path.stat().st_blocks * 512 <= 9 * MIB  # the rest are holes
    with open(path, "rb") as f:  # pieces are distinct (the digests differ)
        pieces = set()
        for i in range(8):
            f.seek(i * 8 * MIB)
            pieces.add(f.read(MIB))
    assert len(pieces) == 8 and b"\0" * MIB not in pieces
    with pytest.raises(ValueError):
        make_sparse(path, 8 * MIB, 16 * MIB)


def test_dense_maker_allocates_every_block(tmp_path: Path) -> None:
    path = tmp_path / "dense.vmdk"
    assert make_dense(path, 5 * MIB + 3, chunk=2 * MIB) == 5 * MIB + 3
    assert os.path.getsize(path) == 5 * MIB + 3
    assert data_bytes(path) >= 5 * MIB


def test_jobs_and_smoke() -> None:
    opts, _ = bench_nfc.parse_args([])
    jobs = bench_nfc.lab_jobs(opts)
    assert jobs == {NfcLabSpec(1000): ["dense", "sparse"], NfcLabSpec(10000): ["dense", "cold"]}
    smoke, _ = bench_nfc.parse_args(["--smoke"])
    assert (smoke.size_mib, smoke.sparse_mib, smoke.sparse_data_mib) == (64, 512, 64)
    assert list(bench_nfc.lab_jobs(smoke)) == [NfcLabSpec(1000)]


def test_table() -> None:
    rows = [
        Row("dense", "iperf3", 117.0, "MB/s", 125.0),
        Row("dense", "NFC wire", 110.0, "MB/s", 117.0, ">= 0.90", "note"),
        Row("sparse", "NFC copy", 2.0, "s", 20.0, ">= 5.00", inverse=True),
    ]
    lines = format_table(rows).splitlines()
    assert lines[0].split()[:6] == ["part", "measure", "value", "limit", "ratio", "aim"]
    assert set(lines[1]) == {"-"}
    assert "0.94" in lines[3] and lines[3].endswith("note")
    assert "10.00" in lines[4]
    assert rows[1].meets_aim is True and rows[2].meets_aim is True
    assert rows[0].meets_aim is None
