"""NFS 4.1 session logic of vmknet's client against fake servers on socketpairs (no kernel):
compounds spread over the connections, slots and sequence IDs, a silent connection dropped and
its compounds retried on the other with the same slot and sequence ID."""

from __future__ import annotations

import itertools
import socket
import threading
import time
from collections.abc import Iterator

import pytest

from vmknet.storage.nfsc import rpc
from vmknet.storage.nfsc import v4proto as v4
from vmknet.storage.nfsc.connect import Bind
from vmknet.storage.nfsc.errors import NfsError
from vmknet.storage.nfsc.v41 import Path41, V41Mount, _State
from vmknet.storage.nfsc.xdr import Packer, Unpacker

SID = b"S" * 16


class FakeServer:
    """Answers COMPOUNDs of SEQUENCE + PUTFH (or stays silent); records (slot, seqid)."""

    def __init__(self, sock: socket.socket, silent: bool = False) -> None:
        self.sock, self.silent = sock, silent
        self.seen: list[tuple[int, int]] = []
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self) -> None:
        try:
            while True:
                head = self.sock.recv(4, socket.MSG_WAITALL)
                if len(head) < 4:
                    return
                size = int.from_bytes(head, "big") & rpc.MAX_FRAGMENT
                u = Unpacker(self.sock.recv(size, socket.MSG_WAITALL))
                xid = u.u32()
                for _ in range(5):
                    u.u32()  # type, rpc version, program, version, procedure
                u.u32(), u.opaque(400), u.u32(), u.opaque(400)  # credential, verifier
                u.string(64), u.u32()
                count = u.u32()
                assert u.u32() == v4.SEQUENCE and u.fixed(16) == SID
                seqid, slot = u.u32(), u.u32()
                self.seen.append((slot, seqid))
                if self.silent:
                    continue
                p = Packer().u32(xid).u32(rpc.REPLY).u32(rpc.MSG_ACCEPTED).u32(0).opaque(b"")
                p.u32(0).u32(0).string("").u32(count)
                p.u32(v4.SEQUENCE).u32(0).fixed(SID, 16).u32(seqid).u32(slot).u32(3).u32(3)
                p.u32(0)
                for _ in range(count - 1):
                    p.u32(v4.PUTFH).u32(0)
                self.sock.sendall(rpc.record(p.data()))
        except OSError:
            return


def _mount(failover: float) -> V41Mount:
    m = V41Mount.__new__(V41Mount)  # the session logic without a server to set it up
    m.lock = threading.RLock()
    m.servers, m.export = ["198.18.31.100", "198.18.30.100"], "/vols"
    m.paths = [Path41(s, Bind()) for s in m.servers]
    m.timeout, m.failover = 5.0, failover
    m.state = _State(1, SID, [1] * 4, 1)
    m._rr = itertools.count()
    m._last = time.monotonic()
    return m


@pytest.fixture
def pairs() -> Iterator[list[tuple[socket.socket, socket.socket]]]:
    made = [socket.socketpair() for _ in range(2)]
    yield made
    for a, b in made:
        a.close()
        b.close()


def test_compounds_are_spread_over_both_connections_on_fresh_slots(
        pairs: list[tuple[socket.socket, socket.socket]]) -> None:
    m = _mount(2.0)
    servers = []
    for path, (ours, theirs) in zip(m.paths, pairs, strict=True):
        path.rpc = rpc.Connection(ours, timeout=2.0, peer=path.server)
        servers.append(FakeServer(theirs))
    results = m.many([[v4.putfh(b"fh")] for _ in range(8)], "WRITE")
    assert results == [[None]] * 8
    assert [len(s.seen) for s in servers] == [4, 4]  # round robin
    used = sorted(servers[0].seen + servers[1].seen)
    assert {slot for slot, _ in used} <= set(range(4))
    # Each slot's sequence IDs go 1, 2, ... in order (RFC 8881 2.10.6.1).
    for slot in range(4):
        ids = [q for s, q in used if s == slot]
        assert ids == list(range(1, len(ids) + 1))
    assert m.state.slots == [1 + sum(1 for s, _ in used if s == slot) for slot in range(4)]


def test_a_silent_connection_is_dropped_and_its_compounds_retried_on_the_other(
        pairs: list[tuple[socket.socket, socket.socket]]) -> None:
    m = _mount(0.3)
    silent = FakeServer(pairs[0][1], silent=True)
    live = FakeServer(pairs[1][1])
    m.paths[0].rpc = rpc.Connection(pairs[0][0], timeout=2.0, peer=m.paths[0].server)
    m.paths[1].rpc = rpc.Connection(pairs[1][0], timeout=2.0, peer=m.paths[1].server)
    started = time.monotonic()
    results = m.many([[v4.putfh(b"fh")] for _ in range(6)], "WRITE")
    assert results == [[None]] * 6
    assert time.monotonic() - started < 2.0  # the failover time, not the full timeout
    assert not m.paths[0].up and m.paths[1].up
    assert m.paths[0].why is not None and "no reply within 0.3 s" in m.paths[0].why
    # What the silent one got went again on the live one: same slot, same sequence ID.
    assert silent.seen and set(silent.seen) <= set(live.seen)
    assert len(live.seen) == 6  # each compound done once, on the live connection


def test_every_connection_down_is_one_clear_error(
        pairs: list[tuple[socket.socket, socket.socket]]) -> None:
    m = _mount(0.2)
    m.timeout = 0.5  # the last connection standing waits the full timeout, not the failover
    for path, (ours, theirs) in zip(m.paths, pairs, strict=True):
        path.rpc = rpc.Connection(ours, timeout=0.2, peer=path.server)
        FakeServer(theirs, silent=True)
    m._establish = lambda: None  # type: ignore[method-assign]  # no server to make anew
    started = time.monotonic()
    with pytest.raises(NfsError) as failed:
        m.many([[v4.putfh(b"fh")]], "WRITE")
    assert time.monotonic() - started < 1.5  # 0.2 s, then 0.5 s: bounded
    assert "every connection is down" in str(failed.value) and "\n" not in str(failed.value)
