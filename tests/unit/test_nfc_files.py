"""Sparse maps of real sparse files, block digests, path confinement."""

from __future__ import annotations

import os
import zlib
from pathlib import Path

import pytest

from vmknet.nfc.files import BLOCK, Datastores, block_digests, confine, data_ranges, punch_hole
from vmknet.nfc.protocol import Code, NfcError


def _sparse(path: Path, size: int, chunks: list[tuple[int, bytes]]) -> None:
    with open(path, "wb") as f:
        f.truncate(size)
        for off, data in chunks:
            f.seek(off)
            f.write(data)


def test_data_ranges_of_a_sparse_file(tmp_path: Path) -> None:
    path = tmp_path / "disk"
    _sparse(path, 64 * BLOCK, [(0, b"x" * BLOCK), (32 * BLOCK, b"y" * 2 * BLOCK)])
    fd = os.open(path, os.O_RDONLY)
    try:
        ranges = data_ranges(fd, 64 * BLOCK)
    finally:
        os.close(fd)
    if ranges == [(0, 64 * BLOCK)]:
        pytest.skip("this file system does not report holes")
    assert sum(n for _, n in ranges) == 3 * BLOCK
    assert ranges[0][0] == 0 and ranges[-1] == (32 * BLOCK, 2 * BLOCK)


def test_block_digests_read_holes_as_zeros(tmp_path: Path) -> None:
    path = tmp_path / "disk"
    _sparse(path, 3 * BLOCK + 10, [(BLOCK + 5, b"abc")])
    fd = os.open(path, os.O_RDONLY)
    try:
        digests = block_digests(fd, 3 * BLOCK + 10)
        whole = block_digests(fd, 3 * BLOCK + 10, ranges=[(0, 3 * BLOCK + 10)])
    finally:
        os.close(fd)
    data = path.read_bytes()
    expect = [zlib.crc32(data[i:i + BLOCK]).to_bytes(4, "big")
              for i in range(0, len(data), BLOCK)]
    assert digests == expect == whole and len(digests) == 4


def test_punch_hole_zeroes(tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_bytes(b"z" * 3 * 4096)
    fd = os.open(path, os.O_RDWR)
    try:
        punch_hole(fd, 4096, 4096)
    finally:
        os.close(fd)
    assert path.read_bytes() == b"z" * 4096 + bytes(4096) + b"z" * 4096


@pytest.mark.parametrize("bad", ["../x", "/etc/passwd", "a/../../x", "", "link/x", "link"])
def test_paths_escaping_a_datastore_are_refused(tmp_path: Path, bad: str) -> None:
    root = Datastores(tmp_path).create("lab", "esx01", "ds1")
    (root / "link").symlink_to(tmp_path)
    with pytest.raises(NfcError) as caught:
        confine(root, bad)
    assert caught.value.code is Code.ACCESS


def test_paths_inside_a_datastore(tmp_path: Path) -> None:
    stores = Datastores(tmp_path)
    root = stores.create("lab", "esx01", "ds1")
    assert root == tmp_path / "lab" / "esx01" / "datastores" / "ds1"
    assert confine(root, "vm1/disk.vmdk") == root.resolve() / "vm1" / "disk.vmdk"
    for name in ("..", "a/b", "../ds1"):
        with pytest.raises(NfcError):
            stores.root("lab", "esx01", name)
    with pytest.raises(NfcError) as missing:
        stores.root("lab", "esx01", "ds2")
    assert missing.value.code is Code.NOT_FOUND
