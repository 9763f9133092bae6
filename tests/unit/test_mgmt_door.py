"""The controller's management door on its event loop (controller/door.py), on loopback.

Real TLS 1.3 with a test CA: a peer without a certificate gets one `join` and
nothing else; a host's certificate gets its host's methods, many requests on
one connection; an announced frame over the limit ends the connection before
it is read; a silent connection is closed by the sweep, a held answer (a long
poll) is not.
"""

from __future__ import annotations

import socket
import ssl
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from vmknet.controller.door import ManagementDoor
from vmknet.mgmt import wire
from vmknet.trust import pki


@dataclass
class Door:
    port: int
    host_ctx: ssl.SSLContext
    stranger_ctx: ssl.SSLContext
    calls: list[tuple[str, str, str]]  # (who, method, peer)

    def connect(self, ctx: ssl.SSLContext) -> ssl.SSLSocket:
        raw = socket.create_connection(("127.0.0.1", self.port), timeout=5)
        return ctx.wrap_socket(raw)


@pytest.fixture
def door(tmp_path: Path) -> Iterator[Door]:
    ca = pki.Authority.load_or_create(tmp_path / "ca", "door")
    ca.issue(pki.CONTROLLER, "controller.door").save(tmp_path / "ctl")
    ca.issue(pki.HOST, "esx01", ["127.0.0.1"]).save(tmp_path / "h1")
    server = pki.server_context(pki.Credential.load(tmp_path / "ctl"), tmp_path / "ctl")
    server.verify_mode = ssl.CERT_OPTIONAL  # as the controller: a joining host has none
    host_ctx = pki.client_context(pki.Credential.load(tmp_path / "h1"), tmp_path / "h1")
    calls: list[tuple[str, str, str]] = []

    def joining(peer: str) -> dict[str, wire.Handler]:
        def join(p: dict[str, Any]) -> dict[str, Any]:
            calls.append(("stranger", "join", peer))
            return {"ok": 1}

        return {"join": join}

    def host(name: str, peer: str) -> dict[str, wire.Handler]:
        def beat(p: dict[str, Any]) -> dict[str, Any]:
            calls.append((name, "heartbeat", peer))
            return {"n": p["n"]}

        def hold(p: dict[str, Any]) -> dict[str, Any]:
            time.sleep(float(p["seconds"]))
            return {"held": True}

        return {"heartbeat": beat, "confirm": hold}

    listener = socket.create_server(("127.0.0.1", 0))
    d = ManagementDoor(listener, server, joining, host, join_limit=1024, limit=4096,
                       timeout=1.0, idle=1.0)
    d.start()
    yield Door(listener.getsockname()[1], host_ctx, pki.pinned_client_context("x"), calls)
    d.stop()


def _call(tls: ssl.SSLSocket, method: str, params: dict[str, Any], n: int = 1) -> Any:
    return wire.call(tls, method, params, n)


def test_a_host_calls_its_methods_many_times_on_one_connection(door: Door) -> None:
    with door.connect(door.host_ctx) as tls:
        for n in range(1, 6):
            assert _call(tls, "heartbeat", {"n": n}, n) == {"n": n}
    assert door.calls == [("esx01", "heartbeat", "127.0.0.1")] * 5


def test_a_stranger_may_only_join_once(door: Door) -> None:
    with door.connect(door.stranger_ctx) as tls:
        with pytest.raises(Exception) as refused:
            _call(tls, "heartbeat", {"n": 1})
        assert getattr(refused.value, "code", "") == "NotSupported"
    with door.connect(door.stranger_ctx) as tls:
        assert _call(tls, "join", {}) == {"ok": 1}
        with pytest.raises((wire.WireError, OSError)):  # one request: the door hung up
            _call(tls, "join", {}, 2)
    assert [c[:2] for c in door.calls] == [("stranger", "join")]


def test_a_frame_over_the_limit_is_never_read(door: Door) -> None:
    with door.connect(door.host_ctx) as tls:
        tls.sendall(wire.LENGTH.pack(10 * 1024 * 1024) + b"{")
        tls.settimeout(5)
        assert tls.recv(1) == b""  # closed without a reply
    assert door.calls == []


def test_silence_is_closed_by_the_sweep_and_a_held_answer_is_not(door: Door) -> None:
    with door.connect(door.host_ctx) as tls:
        assert _call(tls, "confirm", {"seconds": 2.0}) == {"held": True}  # 2 s > idle
        tls.settimeout(5)
        start = time.monotonic()
        assert tls.recv(1) == b""  # then silent: closed within idle + a sweep
        assert time.monotonic() - start < 3.0


def test_slow_calls_do_not_hold_the_heartbeats_of_others(door: Door) -> None:
    slow = door.connect(door.host_ctx)
    done = threading.Event()

    def held() -> None:
        _call(slow, "confirm", {"seconds": 1.5})
        done.set()

    threading.Thread(target=held, daemon=True).start()
    time.sleep(0.1)
    with door.connect(door.host_ctx) as tls:
        start = time.monotonic()
        assert _call(tls, "heartbeat", {"n": 7}) == {"n": 7}
        assert time.monotonic() - start < 0.5
    assert done.wait(5)
    slow.close()
