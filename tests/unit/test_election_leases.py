"""A lease per agent (controller/leases.py) on a real etcd: heartbeats keep hosts/<h>/alive,
silence lets it go within the TTL, a newly elected controller adopts the keys it finds,
and the host table reports liveness from them."""

from __future__ import annotations

import threading
import time

import test_store_contract as contract

from vmknet.controller.hosts import AVAILABLE, FAILING, NOT_JOINED, HostTable
from vmknet.controller.leases import HEARTBEAT_S, HostLeases
from vmknet.store.etcd_client import Etcd, parse
from vmknet.store.hosts import HostStates

etcd_server, etcd_url = contract.etcd_server, contract.etcd_url
TTL = 2
ROUND = max(TTL / 3, 0.5)  # the keeper's period


def beating(leases: HostLeases, host: str, stop: threading.Event) -> threading.Thread:
    """An agent's heartbeats, once a second, as the controller's heartbeat handler sees them."""
    def run() -> None:
        while not stop.is_set():
            leases.seen(host)
            stop.wait(1.0)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def test_heartbeats_keep_the_alive_key_and_silence_lets_it_go(etcd_url: str) -> None:
    address = parse(etcd_url)
    leases, stop, quiet = HostLeases(address, TTL), threading.Event(), threading.Event()
    leases.start(stop)
    beating(leases, "esx01", stop)
    beating(leases, "esx02", quiet)
    try:
        deadline = time.monotonic() + TTL + 2
        while leases.alive() != {"esx01", "esx02"} and time.monotonic() < deadline:
            time.sleep(0.1)
        assert leases.alive() == {"esx01", "esx02"}
        assert HostStates(address).alive() == ["esx01", "esx02"]
        first = Etcd(address).get("hosts/esx01/alive")
        assert first is not None and first.lease
        time.sleep(2 * TTL + 1)  # well past one TTL: the heartbeats keep both
        assert HostStates(address).alive() == ["esx01", "esx02"]
        kept = Etcd(address).get("hosts/esx01/alive")
        assert kept is not None and kept.lease == first.lease  # the same lease, refreshed
        quiet.set()  # esx02's agent stops heartbeating
        silent_at = time.monotonic()
        while "esx02" in HostStates(address).alive() and time.monotonic() - silent_at < 10:
            time.sleep(0.1)
        gone_after = time.monotonic() - silent_at
        assert HostStates(address).alive() == ["esx01"]
        assert gone_after <= HEARTBEAT_S + 2 * ROUND + TTL + 0.5  # the bound leases.py gives
        time.sleep(ROUND + 0.2)
        assert leases.alive() == {"esx01"}
    finally:
        stop.set()
        quiet.set()


def test_a_new_leader_adopts_the_leases_it_finds(etcd_url: str) -> None:
    address = parse(etcd_url)
    HostLeases(address, TTL).round({"esx01", "esx02"})  # the old leader's one round, then gone
    found = {h: Etcd(address).get(f"hosts/{h}/alive") for h in ("esx01", "esx02")}
    new, stop = HostLeases(address, TTL), threading.Event()
    assert new.load() == {"esx01", "esx02"}  # known at once, before any heartbeat
    new.start(stop)
    agent = beating(new, "esx01", stop)  # only esx01's agent reconnects
    try:
        time.sleep(2 * TTL + 1)
        assert HostStates(address).alive() == ["esx01"]
        kept = Etcd(address).get("hosts/esx01/alive")
        before = found["esx01"]
        assert kept is not None and before is not None and kept.lease == before.lease
    finally:
        stop.set()
        agent.join()


class Alive(HostLeases):
    """A fixed liveness, for the table's logic alone."""

    def __init__(self, hosts: set[str]) -> None:
        self.hosts = frozenset(hosts)
        self.seen_hosts: list[str] = []

    def alive(self) -> frozenset[str]:
        return self.hosts

    def seen(self, host: str) -> None:
        self.seen_hosts.append(host)


def test_the_table_reads_liveness_from_the_leases() -> None:
    expected = {h: [(f"198.18.0.{i}", "vmk0")] for i, h in enumerate(("esx01", "esx02"), 11)}
    table = HostTable()
    rows = {r["host"]: r for r in table.report(expected)}
    assert [rows[h]["condition"] for h in expected] == [NOT_JOINED, NOT_JOINED]
    liveness = Alive({"esx01"})
    table.liveness = liveness
    rows = {r["host"]: r for r in table.report(expected)}
    # esx01's lease is alive: connected and Available before its first heartbeat here
    assert (rows["esx01"]["connected"], rows["esx01"]["condition"]) == (True, AVAILABLE)
    assert (rows["esx02"]["connected"], rows["esx02"]["condition"]) == (False, NOT_JOINED)
    table.heartbeat("esx02", "198.18.0.12", "vmk0", 42, None)
    assert liveness.seen_hosts == ["esx02"]  # a heartbeat is what keeps a lease
    table.heartbeat("esx01", "198.18.0.11", "vmk0", 41, None)
    rec = table._hosts["esx01"]
    rec.links["198.18.0.11"].last -= 10  # its heartbeats stopped 10 s ago
    table.liveness = Alive(set())  # and its lease expired
    rows = {r["host"]: r for r in table.report(expected)}
    assert (rows["esx01"]["connected"], rows["esx01"]["condition"]) == (False, FAILING)
