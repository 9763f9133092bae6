"""Pure parts of vMotion: framing, chunking, the stop rule, crypto, the report."""

from __future__ import annotations

import json
import socket

import numpy as np
import pytest
from cryptography.exceptions import InvalidTag

from vmknet.cli.commands_vm import ENCRYPTION_MODES
from vmknet.errors import InvalidArgument
from vmknet.vm.memory import DIGEST_PAGES, GuestMemory
from vmknet.vm.units import PAGE_SIZE
from vmknet.vmotion import crypto, protocol
from vmknet.vmotion.precopy import Plan, chunks, fits, predict, segments
from vmknet.vmotion.report import MigrationReport, PairStat, RoundStat
from vmknet.vmotion.target import Incoming
from vmknet.vmotion.verify import FLIP_ENV


def test_frame_roundtrip_and_garbage() -> None:
    data = protocol.pack(protocol.PAGES, 3, 1 << 40, 256, 1 << 20)
    assert len(data) == protocol.HEADER.size == 24
    assert protocol.unpack(data) == (protocol.PAGES, 3, 1 << 40, 256, 1 << 20)
    with pytest.raises(protocol.ProtocolError):
        protocol.unpack(b"\x09" + bytes(23))
    with pytest.raises(protocol.ProtocolError):
        protocol.unpack(protocol.pack(protocol.PAGES, 1, 0, 1, protocol.MAX_PAYLOAD + 1))


def test_read_frame_over_a_socket_and_eof() -> None:
    a, b = socket.socketpair()
    with a, b:
        a.sendall(protocol.pack(protocol.ACK, 7)[:10])
        a.sendall(protocol.pack(protocol.ACK, 7)[10:])
        assert protocol.read_frame(b).round == 7
        a.shutdown(socket.SHUT_WR)
        with pytest.raises(ConnectionError):
            protocol.read_frame(b)


def test_chunks_split_runs_and_limit() -> None:
    idx = np.array([0, 1, 2, 5, 6, 10, 11, 12, 13, 14], dtype=np.int64)
    assert chunks(idx, max_pages=3) == [(0, 3), (5, 2), (10, 3), (13, 2)]
    assert chunks(np.array([], dtype=np.int64)) == []


def test_segments_mark_zero_runs() -> None:
    nonzero = np.array([True, True, False, False, True])
    assert segments(nonzero, 100) == [(100, 2, False), (102, 2, True), (104, 1, False)]
    assert segments(np.ones(4, dtype=bool), 8) == [(8, 4, False)]


def test_stop_rule_and_throttle() -> None:
    assert fits(0, 0.0, 0.1)
    assert fits(100, 100 * 4096 / 0.1, 0.1) and not fits(101, 100 * 4096 / 0.1, 0.1)
    plan = Plan(max_downtime=0.1, max_rounds=2, throttle_rounds=2)
    assert plan.next_step(1, 10, 1e9) == "stun"
    assert plan.next_step(1, 10**6, 1e6) == "continue"
    assert [plan.next_step(r, 10**6, 1e6) for r in (2, 3, 4)] == ["throttle", "throttle",
                                                                  "stun"]


def test_stop_rule_keeps_a_margin_below_the_goal() -> None:
    rate = 100 * PAGE_SIZE / 0.1  # 100 pages in 100 ms
    assert Plan(max_downtime=0.1).next_step(1, 90, rate) == "stun"
    careful = Plan(max_downtime=0.1, margin=0.8)
    assert careful.next_step(1, 90, rate) == "continue"
    assert careful.next_step(1, 80, rate) == "stun"


def test_stop_rule_counts_the_fixed_switchover_costs() -> None:
    rate = 100 * PAGE_SIZE / 0.1  # 100 pages in 100 ms
    assert predict(0, 0.0, 0.004) == 0.004 and predict(10, 0.0) == float("inf")
    assert predict(50, rate, 0.02) == pytest.approx(0.07)
    assert fits(100, rate, 0.1) and not fits(100, rate, 0.1, fixed=0.005)
    assert fits(90, rate, 0.1, fixed=0.005)
    plan = Plan(max_downtime=0.1, max_rounds=2, throttle_rounds=1)
    assert plan.next_step(1, 90, rate) == "stun" and plan.next_step(1, 90, rate, 0.02) == "continue"
    assert plan.next_step(1, 0, rate, 0.2) == "continue", "fixed costs alone can miss the goal"
    assert plan.predict(50, rate, 0.02) == pytest.approx(0.07)
    assert predict(50, rate, 0.02, per_page=0.0002) == pytest.approx(0.08)  # target hashing
    assert plan.next_step(1, 90, rate, 0.0, per_page=0.0002) == "continue"


def _receive(memory: GuestMemory, frames: list[tuple[int, int, int, bytes | None]]) -> Incoming:
    incoming = Incoming(memory, None)
    for rnd, start, count, data in frames:
        kind = protocol.ZERO if data is None else protocol.PAGES
        incoming._apply(protocol.Frame(kind, rnd, start, count, len(data or b"")),
                        None if data is None else memoryview(data))
    return incoming


def test_target_block_digests_follow_the_receive_path() -> None:
    """Frames across block edges, zero runs, stale (older round) data: the digest kept as
    pages land equals a full hash of the target's memory, and of the source's."""
    n = 3 * max(DIGEST_PAGES, 16) + 5  # with a short last block when blocks are larger
    source = GuestMemory(n * PAGE_SIZE)
    rng = np.random.default_rng(7)
    source.pages[:] = rng.integers(0, 256, source.pages.shape, dtype=np.uint8)
    source.pages[20:40] = 0
    old = bytes(source.view(10, 30))
    frames: list[tuple[int, int, int, bytes | None]] = [
        (1, 0, 10, bytes(source.view(0, 10))), (1, 10, 30, old), (2, 20, 20, None),
        (1, 20, 20, old[10 * PAGE_SIZE:]),  # late data of a dead stream: dropped
        (1, 40, n - 40, bytes(source.view(40, n - 40)))]
    target = GuestMemory(source.size)
    incoming = _receive(target, frames)
    assert np.array_equal(target.pages, source.pages)
    assert incoming.digest() == target.digest() == source.digest()
    empty = GuestMemory(source.size)  # nothing received: zeros, known without hashing
    assert Incoming(empty, None).digest() == empty.digest()


def test_flip_hook_corrupts_the_target(monkeypatch: pytest.MonkeyPatch) -> None:
    source = GuestMemory(32 * PAGE_SIZE)
    monkeypatch.setenv(FLIP_ENV, "3")
    target = GuestMemory(source.size)
    incoming = _receive(target, [(1, 0, source.n_pages, None)])
    assert target.pages[3].any() and incoming.digest() == target.digest() != source.digest()


def test_crypto_modes_and_seal_open() -> None:
    assert crypto.MODES == ENCRYPTION_MODES
    with pytest.raises(InvalidArgument):
        crypto.check_mode("sometimes")
    assert crypto.decide("disabled", True)[0] is False
    assert crypto.decide("opportunistic", False)[0] is False
    key = crypto.new_key()
    header = protocol.pack(protocol.PAGES, 1, 0, 1, 4096 + crypto.OVERHEAD)
    sealed = crypto.Sealer(key, 0).seal(header, b"x" * 4096)
    assert len(sealed) == 4096 + crypto.OVERHEAD
    assert crypto.Opener(key).open(header, memoryview(sealed)) == b"x" * 4096
    with pytest.raises(InvalidTag):  # the header (AAD) was changed on the way
        crypto.Opener(key).open(protocol.pack(protocol.PAGES, 2, 0, 1, 4124),
                                memoryview(sealed))


def test_report_json_roundtrip() -> None:
    report = MigrationReport("web01", "esx01", "esx02", result="completed",
                             rounds=[RoundStat(1, 10, 2, 40960, 0.5, 3)],
                             pairs=[PairStat("vmk1", "198.18.4.11", "vmk1", "198.18.4.12",
                                             "vmotion", None, bytes=40960, seconds=0.5)])
    data = json.loads(json.dumps(report.to_dict()))
    assert data["pairs"][0]["gbps"] == round(40960 * 8 / 0.5 / 1e9, 3)
    back = MigrationReport.from_dict(data)
    assert back == report and back.completed and back.bytes == 40960


def test_incoming_hello_sizes_are_checked_before_allocation() -> None:
    from vmknet.vm.units import MAX_MEMORY, MAX_RATE
    from vmknet.vmotion.target import _bad_hello

    good = {"memory": 8 << 20, "dirty_rate": 0, "seed": 1, "streams": 2}
    assert _bad_hello(good, uses=3) is None
    assert "streams" in str(_bad_hello(good, uses=2))  # the ticket admits one stream only
    assert "memory" in str(_bad_hello({**good, "memory": MAX_MEMORY + 1}, uses=3))
    assert "memory" in str(_bad_hello({**good, "memory": 0}, uses=3))
    assert "rate" in str(_bad_hello({**good, "dirty_rate": MAX_RATE + 1}, uses=3))
    assert _bad_hello({**good, "streams": 0}, uses=3) is not None
    assert _bad_hello({"memory": "lots"}, uses=3) == "malformed hello"


def test_replication_wire_refuses_declared_lengths_over_the_limits() -> None:
    from vmknet.replication import wire

    a, b = socket.socketpair()
    with a, b:
        a.sendall(wire.LEN.pack(wire.MAX_HEAD + 1))
        with pytest.raises(ValueError, match="head"):
            wire.recv(b)
        raw = json.dumps({"op": "delta", "data": wire.MAX_DATA + 1}).encode()
        a.sendall(wire.LEN.pack(len(raw)) + raw)
        with pytest.raises(ValueError, match="data"):
            wire.recv(b)
        wire.send(a, {"op": "hello"}, b"xyz")
        assert wire.recv(b) == ({"op": "hello", "data": 3}, b"xyz")
