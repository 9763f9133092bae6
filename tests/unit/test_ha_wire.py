"""FDM's datagrams: sealed with the cluster key, every field checked, replays refused."""

from __future__ import annotations

import time
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vmknet.ha import wire

KEY = bytes(range(32))


def _hb(**over: Any) -> dict[str, Any]:
    return {"kind": "hb", "from": "esx01", "cluster": "c1", "to": None, "at": time.time(),
            "role": "primary", "primary": "esx01", "datastores": 2, "heard": ["esx02"],
            "vms": [{"name": "vm1", "memory": 1 << 20, "dirtyRate": 0, "disk": None}],
            "isolated": False} | over


def test_a_sealed_heartbeat_opens_with_the_same_key_only() -> None:
    data = wire.seal(KEY, _hb())
    assert wire.open_sealed(KEY, data)["from"] == "esx01"
    with pytest.raises(wire.HaWireError, match="Bad MAC"):
        wire.open_sealed(bytes(32), data)


def test_a_flipped_byte_anywhere_is_refused() -> None:
    data = bytearray(wire.seal(KEY, _hb()))
    for i in (0, 5, len(data) - 2):
        bad = bytearray(data)
        bad[i] ^= 1
        with pytest.raises(wire.HaWireError):
            wire.open_sealed(KEY, bytes(bad))


@pytest.mark.parametrize("over", [
    {"role": "king"}, {"datastores": -1},
    {"vms": [{"name": "x", "memory": 0, "dirtyRate": 0, "disk": None}]},
    {"vms": [{"name": "x", "memory": 1, "dirtyRate": 0}]},
    {"vms": [{"name": "x", "memory": 1, "dirtyRate": 0, "disk": 5}]},
    {"heard": "esx02"}, {"isolated": 1}, {"from": ""}, {"at": "now"}, {"extra": 1},
])
def test_a_heartbeat_with_a_bad_field_is_refused_even_when_sealed(over: dict[str, Any]) -> None:
    with pytest.raises(wire.HaWireError):
        wire.open_sealed(KEY, wire.seal(KEY, _hb(**over)))


def test_lengths_are_checked_before_anything() -> None:
    with pytest.raises(wire.HaWireError, match="bytes"):
        wire.open_sealed(KEY, b"FDM1")
    with pytest.raises(wire.HaWireError, match="bytes"):
        wire.open_sealed(KEY, b"x" * (wire.MAX_DATAGRAM + 1))
    with pytest.raises(wire.HaWireError):
        wire.seal(KEY, _hb(heard=["h" * 60] * 600))


def test_replays_and_stale_messages_are_refused_per_link() -> None:
    replay = wire.Replay()
    now = 1000.0
    assert replay.fresh("esx01", ("a", "b"), now, now)
    assert not replay.fresh("esx01", ("a", "b"), now, now)  # the same datagram again
    assert replay.fresh("esx01", ("a2", "b"), now, now)  # another link: its own order
    assert not replay.fresh("esx01", ("a", "b"), now - 1, now)
    assert not replay.fresh("esx01", ("a", "b"), now + wire.SKEW + 1, now)


@given(st.binary(max_size=300))
def test_random_bytes_never_open(data: bytes) -> None:
    with pytest.raises(wire.HaWireError):
        wire.open_sealed(KEY, data)


@given(st.dictionaries(st.text(max_size=8), st.integers() | st.text(max_size=8), max_size=8))
def test_sealed_junk_is_refused_by_shape(message: dict[str, Any]) -> None:
    with pytest.raises(wire.HaWireError):
        wire.open_sealed(KEY, wire.seal(KEY, message))
