"""Pure parts of vMotion: framing, chunking, the stop rule, crypto, the report."""

from __future__ import annotations

import json
import socket

import numpy as np
import pytest
from cryptography.exceptions import InvalidTag

from vmknet.cli.commands_vm import ENCRYPTION_MODES
from vmknet.errors import InvalidArgument
from vmknet.vmotion import crypto, protocol
from vmknet.vmotion.precopy import Plan, chunks, fits, segments
from vmknet.vmotion.report import MigrationReport, PairStat, RoundStat


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
