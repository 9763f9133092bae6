"""vmknet's NFS client, pure parts: XDR, ONC RPC records and replies, paths in an export.

Hostile replies (truncated, oversized lengths, XIDs nobody sent, a server that goes
silent) come from a fake server at the other end of a socketpair.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
import time
from collections.abc import Iterator

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vmknet.storage.nfsc import paths, rpc, v3proto
from vmknet.storage.nfsc.errors import (
    NfsError,
    NfsExists,
    NfsNotFound,
    NfsPathError,
    NfsProtocolError,
    NfsTimeout,
)
from vmknet.storage.nfsc.xdr import Packer, Unpacker

U32 = st.integers(0, 2**32 - 1)
U64 = st.integers(0, 2**64 - 1)


# ------------------------------------------------------------------ XDR

@given(st.lists(st.one_of(st.tuples(st.just("u32"), U32), st.tuples(st.just("u64"), U64),
                          st.tuples(st.just("i32"), st.integers(-2**31, 2**31 - 1)),
                          st.tuples(st.just("bool"), st.booleans()),
                          st.tuples(st.just("opaque"), st.binary(max_size=70)),
                          st.tuples(st.just("string"), st.text(max_size=30))), max_size=20))
def test_xdr_round_trips_and_keeps_four_byte_alignment(items: list[tuple[str, object]]) -> None:
    p = Packer()
    for kind, value in items:
        if isinstance(value, bool):
            p.boolean(value)
        elif isinstance(value, bytes):
            p.opaque(value)
        elif isinstance(value, str):
            p.string(value)
        else:
            assert isinstance(value, int)
            {"u32": p.u32, "u64": p.u64, "i32": p.i32}[kind](value)
    raw = p.data()
    assert len(raw) % 4 == 0
    u = Unpacker(raw)
    back: list[object] = []
    for kind, _ in items:
        back.append(u.boolean() if kind == "bool" else u.opaque(100) if kind == "opaque"
                    else u.string(1000) if kind == "string"
                    else {"u32": u.u32, "u64": u.u64, "i32": u.i32}[kind]())
    assert back == [value for _, value in items]
    u.done()


def test_xdr_opaque_is_padded_with_zeros() -> None:
    assert Packer().opaque(b"abcde").data() == b"\0\0\0\x05abcde\0\0\0"
    assert Packer().fixed(b"12345678", 8).data() == b"12345678"


@given(st.binary(max_size=40), st.integers(0, 40))
def test_a_truncated_opaque_is_a_protocol_error_not_an_index_error(body: bytes, cut: int) -> None:
    raw = Packer().opaque(body).data()
    cut = min(cut, len(raw) - 1)
    with pytest.raises(NfsProtocolError):
        Unpacker(raw[:cut]).opaque(100)


def test_oversized_lengths_are_refused_before_anything_is_read() -> None:
    huge = struct.pack(">I", 0xFFFFFFF0) + b"x" * 16
    with pytest.raises(NfsProtocolError, match="exceeds 64"):
        Unpacker(huge).opaque(64)  # a file handle claims 4 GiB
    with pytest.raises(NfsProtocolError):
        Unpacker(huge).opaque(1 << 40)  # allowed by the limit, not by the bytes there
    with pytest.raises(NfsProtocolError, match="array of"):
        Unpacker(huge).array(lambda u: u.u32(), 1 << 40)
    with pytest.raises(NfsProtocolError, match="boolean"):
        Unpacker(struct.pack(">I", 2)).boolean()
    with pytest.raises(NfsProtocolError, match="unexpected bytes"):
        Unpacker(b"\0" * 8, 4).done()


# ------------------------------------------------------------------ RPC messages

def test_a_call_carries_auth_sys_and_a_null_verifier() -> None:
    raw = rpc.call_message(0x1234, 100003, 3, 1, b"ARGS", rpc.AuthSys("esx01", 0, 0, (0, 5)))
    u = Unpacker(raw)
    assert [u.u32() for _ in range(6)] == [0x1234, 0, 2, 100003, 3, 1]
    assert u.u32() == rpc.AUTH_SYS
    cred = Unpacker(u.opaque(400))
    cred.u32()  # stamp
    assert (cred.string(255), cred.u32(), cred.u32(), cred.array(lambda x: x.u32())) == \
        ("esx01", 0, 0, [0, 5])
    cred.done()
    assert (u.u32(), u.opaque(400)) == (rpc.AUTH_NONE, b"")
    assert u.fixed(4) == b"ARGS"


def _accepted(xid: int, results: bytes = b"", accept: int = 0) -> bytes:
    return Packer().u32(xid).u32(rpc.REPLY).u32(rpc.MSG_ACCEPTED).u32(0).opaque(b"") \
        .u32(accept).raw(results).data()


def test_replies_are_parsed_and_refusals_named() -> None:
    xid, u = rpc.parse_reply(_accepted(7, b"\0\0\0\x2a"))
    assert (xid, u.u32()) == (7, 42)
    with pytest.raises(NfsError, match="PROC_UNAVAIL"):
        rpc.parse_reply(_accepted(7, accept=3))
    with pytest.raises(NfsError, match=r"versions 2\.\.4"):
        rpc.parse_reply(_accepted(7, Packer().u32(2).u32(4).data(), accept=2))
    denied = Packer().u32(7).u32(rpc.REPLY).u32(rpc.MSG_DENIED).u32(1).u32(5).data()
    with pytest.raises(NfsError, match="AUTH_TOOWEAK"):
        rpc.parse_reply(denied)
    with pytest.raises(NfsProtocolError, match="type 0"):
        rpc.parse_reply(Packer().u32(7).u32(rpc.CALL).data())
    with pytest.raises(NfsProtocolError):
        rpc.parse_reply(b"\0\0\0\x07\0\0")


@given(st.binary(max_size=64))
def test_any_garbage_reply_fails_as_an_nfs_error(raw: bytes) -> None:
    with contextlib.suppress(NfsError):
        rpc.parse_reply(raw)


def test_nfs_statuses_become_the_usual_codes() -> None:
    assert isinstance(v3proto.status_error("x", 2), NfsNotFound)
    assert v3proto.status_error("x", 2).code == "NotFound"
    assert isinstance(v3proto.status_error("x", 17), NfsExists)
    err = v3proto.status_error("WRITE a", 28)
    assert err.code == "NfsError" and err.name == "NFS3ERR_NOSPC" and "NOSPC" in str(err)


# ------------------------------------------------------------------ RPC over a socket

@pytest.fixture
def pair() -> Iterator[tuple[rpc.Connection, socket.socket]]:
    ours, theirs = socket.socketpair()
    conn = rpc.Connection(ours, timeout=0.5, max_reply=4096, peer="fake")
    yield conn, theirs
    conn.close()
    theirs.close()


def _serve(sock: socket.socket, answer: bytes, calls: int = 1,
           close: bool = False) -> threading.Thread:
    """Read `calls` records, then send `answer` (raw bytes, record marks included)."""
    def run() -> None:
        for _ in range(calls):
            mark = int.from_bytes(sock.recv(4, socket.MSG_WAITALL), "big")
            sock.recv(mark & rpc.MAX_FRAGMENT, socket.MSG_WAITALL)
        sock.sendall(answer)
        if close:
            sock.shutdown(socket.SHUT_RDWR)
    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    return worker


def _xids(conn: rpc.Connection, n: int) -> list[int]:
    return [conn.send(1, 1, 0, b"") for _ in range(n)]


def test_a_reply_in_several_fragments_is_joined(pair: tuple[rpc.Connection, socket.socket]) \
        -> None:
    conn, server = pair
    xid = conn._xid + 1
    msg = _accepted(xid, b"\0\0\0\x01\0\0\0\x02")
    _serve(server, struct.pack(">I", 10) + msg[:10] + struct.pack(">I", rpc.LAST_FRAGMENT |
                                                                    (len(msg) - 10)) + msg[10:])
    u = conn.call(1, 1, 0, b"")
    assert (u.u32(), u.u32()) == (1, 2)


def test_pipelined_replies_out_of_order_reach_their_callers(
        pair: tuple[rpc.Connection, socket.socket]) -> None:
    conn, server = pair
    first = conn._xid + 1
    answer = b"".join(rpc.record(_accepted(first + i, struct.pack(">I", i))) for i in (2, 0, 1))
    _serve(server, answer, calls=3)
    xids = _xids(conn, 3)
    assert [conn.reply(x).u32() for x in xids] == [0, 1, 2]


def test_a_reply_for_an_xid_never_sent_ends_the_connection(
        pair: tuple[rpc.Connection, socket.socket]) -> None:
    conn, server = pair
    _serve(server, rpc.record(_accepted(conn._xid + 99)))
    with pytest.raises(NfsProtocolError, match="never sent"):
        conn.call(1, 1, 0, b"")
    assert conn.broken is not None
    with pytest.raises(NfsError, match="unusable"):
        conn.call(1, 1, 0, b"")


def test_an_oversized_fragment_is_refused_before_it_is_read(
        pair: tuple[rpc.Connection, socket.socket]) -> None:
    conn, server = pair
    _serve(server, struct.pack(">I", rpc.LAST_FRAGMENT | 0x7FFFFFF0))  # claims 2 GiB
    with pytest.raises(NfsProtocolError, match="more than 4096 bytes"):
        conn.call(1, 1, 0, b"")


def test_fragments_adding_up_past_the_cap_are_refused(
        pair: tuple[rpc.Connection, socket.socket]) -> None:
    conn, server = pair
    _serve(server, (struct.pack(">I", 3000) + b"\0" * 3000) * 2)
    with pytest.raises(NfsProtocolError, match="more than 4096"):
        conn.call(1, 1, 0, b"")


def test_a_silent_server_times_out_within_the_bound(
        pair: tuple[rpc.Connection, socket.socket]) -> None:
    conn, server = pair
    _serve(server, struct.pack(">I", rpc.LAST_FRAGMENT | 100) + b"\0" * 10)  # then nothing
    started = time.monotonic()
    with pytest.raises(NfsTimeout, match=r"no reply within 0\.5 s"):
        conn.call(1, 1, 0, b"")
    assert time.monotonic() - started < 2.0


def test_a_server_closing_mid_record_is_a_clear_error(
        pair: tuple[rpc.Connection, socket.socket]) -> None:
    conn, server = pair
    _serve(server, struct.pack(">I", rpc.LAST_FRAGMENT | 100) + b"\0" * 10, close=True)
    with pytest.raises(NfsError, match="closed the connection"):
        conn.call(1, 1, 0, b"")


# ------------------------------------------------------------------ paths

@pytest.mark.parametrize("path", ["..", "../x", "a/../../b", "a/./b", "a//b", "./a", "a\0b",
                                  "x" * 256, "/".join("a" * 65)])
def test_paths_that_leave_or_bend_inside_the_export_are_refused(path: str) -> None:
    with pytest.raises(NfsPathError) as caught:
        paths.components(path)
    assert caught.value.code == "InvalidArgument"


def test_paths_are_names_from_the_export_root() -> None:
    assert paths.components("/") == paths.components("") == []
    assert paths.components("/vm1/disk.img") == paths.components("vm1/disk.img") == \
        ["vm1", "disk.img"]
    assert paths.components("vm1/") == ["vm1"]
    assert paths.split("a/b/c") == (["a", "b"], "c")
    with pytest.raises(NfsPathError):
        paths.split("/")


def _encodable(name: str) -> bool:
    try:
        name.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        return False
    return True


@given(st.lists(st.text(st.characters(blacklist_characters="/\0"), min_size=1, max_size=20),
                min_size=1, max_size=8))
def test_components_never_yield_a_name_that_moves(names: list[str]) -> None:
    path = "/".join(names)
    try:
        parts = paths.components(path)
    except NfsPathError:
        assert any(n in (".", "..") or not _encodable(n) or
                   len(n.encode("utf-8", "surrogateescape")) > 255 for n in names)
        return
    assert parts == names and not {".", ".."} & set(parts)
