"""The management channel's framing, the host table's conditions and join tokens (pure)."""

from __future__ import annotations

import socket
import struct
import threading
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vmknet.controller.hosts import HostTable
from vmknet.controller.joins import JoinTokens
from vmknet.errors import InvalidArgument, VmknetError
from vmknet.mgmt import wire
from vmknet.trust.pki import TrustError


def test_call_and_answer_roundtrip() -> None:
    a, b = socket.socketpair()

    def boom(p: dict[str, object]) -> object:
        raise InvalidArgument("bad value", field="x")

    handlers = {"echo": lambda p: p, "boom": boom, "needs": lambda p: p["field"] + 1}
    t = threading.Thread(target=lambda: [wire.answer(b, handlers) for _ in range(5)])
    t.start()
    assert wire.call(a, "echo", {"k": [1, 2]}) == {"k": [1, 2]}
    with pytest.raises(VmknetError) as err:
        wire.call(a, "boom", request_id=2)
    assert err.value.code == "InvalidArgument" and err.value.details == {"field": "x"}
    with pytest.raises(VmknetError) as err:
        wire.call(a, "rm -rf", request_id=3)
    assert err.value.code == "NotSupported"
    for i, params in enumerate(({}, {"field": "text"}), start=4):  # missing, mistyped
        with pytest.raises(VmknetError) as err:
            wire.call(a, "needs", params, request_id=i)
        assert err.value.code == "InvalidArgument"
    t.join(5)
    a.close()
    b.close()


def test_oversized_frame_is_refused_before_reading_it() -> None:
    a, b = socket.socketpair()
    a.sendall(struct.pack("!I", 2**31))  # 2 GiB announced, nothing sent
    with pytest.raises(wire.WireError, match="limit"):
        wire.recv(b, limit=1024)
    a.close()
    b.close()


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=64))
def test_garbage_never_escapes_the_error_tree(garbage: bytes) -> None:
    a, b = socket.socketpair()
    try:
        a.sendall(struct.pack("!I", len(garbage)) + garbage)
        a.shutdown(socket.SHUT_WR)
        try:
            reply = wire.recv(b, limit=1024)
        except VmknetError:
            return
        assert isinstance(reply, dict)
    finally:
        a.close()
        b.close()


def test_conditions_follow_heartbeats(monkeypatch: pytest.MonkeyPatch) -> None:
    now = [1000.0]
    monkeypatch.setattr("vmknet.controller.hosts.time.time", lambda: now[0])
    table = HostTable()
    links = {"esx01": [("198.18.0.11", "vmk0"), ("198.18.1.11", "vmk1")], "esx02": []}
    assert [r["condition"] for r in table.report(links)] == ["NotJoined", "NotJoined"]
    table.joined("esx01")
    assert table.report(links)[0]["condition"] == "Progressing"
    table.heartbeat("esx01", "198.18.0.11", "vmk0", 7, None)
    table.heartbeat("esx01", "198.18.1.11", "vmk1", 7, None)
    assert table.report(links)[0]["condition"] == "Available"
    now[0] += 2
    table.heartbeat("esx01", "198.18.0.11", "vmk0", 7, None)
    now[0] += 2  # vmk1 silent for 4 s: one link lost is Degraded, not a failure
    assert table.report(links)[0]["condition"] == "Degraded"
    now[0] += 5
    row = table.report(links)[0]
    assert row["condition"] == "Failing" and row["connected"] is False
    table.heartbeat("esx01", "198.18.0.11", "vmk0", 7, None)
    table.heartbeat("esx01", "198.18.1.11", "vmk1", 7, None)
    table.changed("esx01", "g1", "progressing")
    assert table.report(links)[0]["condition"] == "Progressing"
    table.changed("esx01", "g1", "reverted", "cut off")
    row = table.report(links)[0]  # a reverted change leaves a healthy host
    assert row["condition"] == "Available" and row["lastChange"]["error"] == "cut off"


def test_join_token_single_use_expiry_and_refusal_keeps_it(tmp_path: Path) -> None:
    tokens = JoinTokens(tmp_path / "t.json")
    token = tokens.create("esx01")

    def refuse(host: str) -> None:
        raise TrustError("wrong place", code="SEC-2")

    with pytest.raises(TrustError):
        tokens.redeem(token, refuse)
    assert tokens.redeem(token) == "esx01"
    with pytest.raises(TrustError):
        tokens.redeem(token)
    old = tokens.create("esx02", ttl=-1)
    for bad in (old, "", "x" * 500, "a.b.c", token.split(".")[0] + ".wrong"):
        with pytest.raises(TrustError):
            tokens.redeem(bad)
    assert (tmp_path / "t.json").stat().st_mode & 0o077 == 0
