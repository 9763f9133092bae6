"""CHUNK frames end to end over a socket pair: packed sender -> Incoming, plain and sealed.

Round 1 sends memory with scattered zero pages; round 2 resends pages that became
zero and pages that changed, so the target must zero pages it wrote before. The
target's memory and its incremental digest must equal the source's.
"""

from __future__ import annotations

import socket

import numpy as np
import pytest

from vmknet.vm.memory import GuestMemory
from vmknet.vm.units import PAGE_SIZE
from vmknet.vmotion import crypto, protocol
from vmknet.vmotion.precopy import chunks
from vmknet.vmotion.report import PairStat
from vmknet.vmotion.streams import Stream, run_round
from vmknet.vmotion.target import Incoming


def _stat() -> PairStat:
    return PairStat("vmk1", "198.18.4.11", "vmk1", "198.18.4.21", "vmotion", None)


@pytest.mark.parametrize("sealed", [False, True])
def test_packed_rounds_rebuild_memory_and_digest(sealed: bool) -> None:
    n = 700  # several 256-page chunks and a short one
    source = GuestMemory(n * PAGE_SIZE)
    rng = np.random.default_rng(3)
    source.pages[:] = rng.integers(0, 256, source.pages.shape, dtype=np.uint8)
    source.pages[rng.random(n) < 0.3] = 0  # zero pages scattered as the workload leaves them
    key = crypto.new_key() if sealed else None
    target = GuestMemory(source.size)
    incoming = Incoming(target, key)
    a, b = socket.socketpair()
    with a:
        incoming.serve(b)
        stream = Stream(0, a, _stat(), 5.0, crypto.Sealer(key, 0) if key else None,
                        packed=True)
        first = run_round([stream], source, 1, chunks(np.arange(n, dtype=np.int64)))
        assert first.pages + first.zeros == n and first.zeros > 0
        again = np.flatnonzero(source.pages.any(axis=1))[:50]  # written pages go zero,
        source.pages[again] = 0
        source.pages[300:310] = 7  # others change
        redo = np.unique(np.concatenate([again, np.arange(300, 310)]))
        run_round([stream], source, 2, chunks(redo))
        stream.close(bye=True)
    incoming.threads[0].join(5)
    assert np.array_equal(target.pages, source.pages)
    assert incoming.digest() == source.digest()
    assert stream.stat.failed is None


def test_chunk_bitmap_and_scatter_helpers() -> None:
    a, b = socket.socketpair()
    with a, b:
        sent = protocol.send_all(a, [b"ab", memoryview(b"cdef"), b"", b"g"])
        into = [bytearray(3), bytearray(0), bytearray(4)]
        protocol.recv_exact_into(b, [memoryview(x) for x in into])
        assert sent == 7 and bytes(into[0] + into[2]) == b"abcdefg"
        a.shutdown(socket.SHUT_WR)
        with pytest.raises(ConnectionError):
            protocol.recv_exact_into(b, [memoryview(bytearray(1))])
    assert [protocol.bitmap_bytes(c) for c in (1, 8, 9, 256)] == [1, 1, 2, 32]
