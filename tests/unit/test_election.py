"""The controller's election (controller/election.py) against a real etcd: one leader, a
standby that takes over on resignation, and fencing: a leader cut off from etcd stops
before its lease can expire, so the standby never leads while it still serves."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator

import pytest
import test_store_contract as contract

from vmknet.controller.election import MARGIN, Leadership
from vmknet.store.etcd_client import Etcd, parse

etcd_server, etcd_url = contract.etcd_server, contract.etcd_url
TTL = 2  # etcd's smallest lease TTL with its default election timeout


class Cuttable:
    """A TCP forwarder to etcd that can be cut: etcd 'unreachable' for its clients, while
    the test still sees etcd directly."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self.listener.getsockname()[1])
        self.cut = threading.Event()
        self._conns: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            if self.cut.is_set():
                client.close()
                continue
            upstream = socket.create_connection(self.target)
            self._conns += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(a: socket.socket, b: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := a.recv(65536):
                b.sendall(data)
        with contextlib.suppress(OSError):
            b.shutdown(socket.SHUT_WR)

    def sever(self) -> None:
        self.cut.set()
        for c in self._conns:
            with contextlib.suppress(OSError):
                c.shutdown(socket.SHUT_RDWR)
            c.close()

    def close(self) -> None:
        self.sever()
        self.listener.close()


@pytest.fixture
def proxied(etcd_url: str) -> Iterator[tuple[str, Cuttable]]:
    address = parse(etcd_url)
    proxy = Cuttable((address.host, address.port))
    try:
        yield f"etcd://127.0.0.1:{proxy.port}{address.prefix}", proxy
    finally:
        proxy.close()


def test_one_leads_the_standby_waits_and_takes_over_at_a_resignation(etcd_url: str) -> None:
    first, second = Leadership(etcd_url, "ctl-a", TTL), Leadership(etcd_url, "ctl-b", TTL)
    assert first.acquire()
    stop = threading.Event()
    threading.Timer(TTL + 1, stop.set).start()
    assert not second.acquire(stop)  # the leader keeps its lease alive past the TTL
    assert second.leader() == "ctl-a"
    won = threading.Event()
    waiter = threading.Thread(target=lambda: second.acquire() and won.set())
    waiter.start()
    time.sleep(0.3)
    assert not won.is_set()
    t0 = time.monotonic()
    first.resign()
    waiter.join(5)
    assert won.is_set()
    assert time.monotonic() - t0 < 1.0  # a resignation hands over at once, no TTL to wait
    assert first.leader() == "ctl-b"
    second.resign()


def test_a_leader_cut_off_from_etcd_is_fenced_before_its_lease_can_expire(
        proxied: tuple[str, Cuttable], etcd_url: str) -> None:
    through_proxy, proxy = proxied
    leader = Leadership(through_proxy, "ctl-a", TTL)
    assert leader.acquire()
    lost: list[tuple[float, str, str | None]] = []
    witness = Etcd(parse(etcd_url))  # sees etcd directly, as the standby does

    def on_lost(why: str) -> None:
        kv = witness.get("controller/leader")
        lost.append((time.monotonic(), why, kv.value if kv else None))

    guard = leader.guard(on_lost)
    time.sleep(TTL + 1)
    assert not lost  # kept alive past its TTL while etcd answers
    cut = time.monotonic()
    proxy.sever()
    guard.join(TTL + 2)
    assert len(lost) == 1
    fenced_at, why, holder = lost[0]
    assert "did not renew" in why
    assert fenced_at - cut < TTL  # within the TTL of the cut
    assert holder == "ctl-a"  # fenced while etcd still held its key: no two leaders
    standby = Leadership(etcd_url, "ctl-b", TTL)
    stop = threading.Event()
    threading.Timer(TTL + 3, stop.set).start()
    assert standby.acquire(stop)
    assert standby.leader() == "ctl-b"
    standby.resign()


def test_a_leader_whose_key_went_to_another_is_fenced(etcd_url: str) -> None:
    leader = Leadership(etcd_url, "ctl-a", TTL)
    assert leader.acquire()
    lost: list[str] = []
    guard = leader.guard(lost.append)
    Etcd(parse(etcd_url)).put("controller/leader", "ctl-x")  # an operator's hand, say
    guard.join(TTL + 1)
    assert lost and "ctl-x" in lost[0]


def test_the_guard_keeps_quiet_while_the_lease_is_kept(etcd_url: str) -> None:
    leader = Leadership(etcd_url, "ctl-a", TTL)
    assert leader.acquire()
    lost: list[str] = []
    leader.guard(lost.append)
    time.sleep(2 * TTL + 0.5)
    assert lost == []
    lease = leader.lease
    assert lease is not None and lease.deadline > time.monotonic() + MARGIN
    leader.resign()


def test_a_standby_waits_out_an_etcd_that_does_not_answer(
        proxied: tuple[str, Cuttable]) -> None:
    through_proxy, proxy = proxied
    proxy.sever()
    standby = Leadership(through_proxy, "ctl-b", TTL)
    stop = threading.Event()
    threading.Timer(1.5, stop.set).start()
    assert not standby.acquire(stop)  # no exception: it keeps campaigning until stopped
