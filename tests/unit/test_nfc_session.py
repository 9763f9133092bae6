"""The NFC server session and client over a socketpair: every op, without namespaces."""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from vmknet.nfc.client import NfcClient
from vmknet.nfc.files import BLOCK, Datastores, block_digests
from vmknet.nfc.protocol import Code, NfcError
from vmknet.nfc.session import Session


@pytest.fixture
def pair(tmp_path: Path) -> Iterator[tuple[NfcClient, Path, threading.Thread]]:
    stores = Datastores(tmp_path / "base")
    root = stores.create("lab", "esx02", "ds1")
    a, b = socket.socketpair()
    thread = threading.Thread(target=Session(b, "lab", "esx02", stores, timeout=5).serve)
    thread.start()
    client = NfcClient(a, timeout=5)
    assert client.hello("esx01")["host"] == "esx02"
    yield client, root, thread
    client.close()
    thread.join(5)


def _source(tmp_path: Path) -> tuple[int, Path]:
    path = tmp_path / "src.vmdk"
    with open(path, "wb") as f:
        f.truncate(8 * BLOCK)
        f.seek(2 * BLOCK + 100)
        f.write(os.urandom(BLOCK))
    return os.open(path, os.O_RDONLY), path


def test_write_verify_rename(pair: tuple[NfcClient, Path, threading.Thread],
                             tmp_path: Path) -> None:
    client, root, _ = pair
    fd, src = _source(tmp_path)
    try:
        handle, size = client.open("ds1", "vm/disk.vmdk.part", "create", 8 * BLOCK)
        assert size == 8 * BLOCK
        client.send_range(handle, fd, 2 * BLOCK + 100, BLOCK)
        client.sync(handle)
        assert client.checksum(handle, BLOCK) == block_digests(fd, 8 * BLOCK)
        mapped = client.map(handle)
        assert sum(n for _, n in mapped) < 4 * BLOCK  # the holes stayed holes
        assert client.read_range(handle, 2 * BLOCK + 100, 16) == os.pread(fd, 16, 2 * BLOCK + 100)
        client.rename("ds1", "vm/disk.vmdk.part", "vm/disk.vmdk")
        client.close_handle(handle)
    finally:
        os.close(fd)
    assert (root / "vm" / "disk.vmdk").read_bytes() == src.read_bytes()
    assert [e["name"] for e in client.listdir("ds1", "vm")] == ["disk.vmdk"]
    info = client.stat("ds1", "vm/disk.vmdk")
    assert info is not None and info["size"] == 8 * BLOCK
    assert client.stat("ds1", "vm/nothing") is None
    client.delete("ds1", "vm/disk.vmdk")
    assert not (root / "vm" / "disk.vmdk").exists()


def test_escapes_and_bad_handles_are_errors_not_disconnects(
        pair: tuple[NfcClient, Path, threading.Thread]) -> None:
    client, _, _ = pair
    for path in ("../../../etc/passwd", "/etc/passwd"):
        with pytest.raises(NfcError) as caught:
            client.open("ds1", path, "read")
        assert caught.value.code is Code.ACCESS
    with pytest.raises(NfcError) as unknown:
        client.open("nods", "x", "read")
    assert unknown.value.code is Code.NOT_FOUND
    with pytest.raises(NfcError) as bad:
        client.setsize(42, 0)
    assert bad.value.code is Code.BAD_HANDLE
    assert client.hello("esx01")["version"] == 1  # the connection is still in frame


def test_a_temporary_part_goes_with_its_connection(
        pair: tuple[NfcClient, Path, threading.Thread]) -> None:
    client, root, thread = pair
    client.open("ds1", "x.part", "create", 4096, temporary=True)
    assert (root / "x.part").exists()
    client.close()
    thread.join(5)
    assert not (root / "x.part").exists()
