"""What only the etcd backend has: addresses, its lock, event retention, leases, election,
host state keys, and the CLI reaching it. Runs on the real etcd of test_store_contract.py."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest
import test_store_contract as contract
from builders import lab
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st

from vmknet.cli.main import main
from vmknet.errors import ConcurrentModification, InvalidArgument
from vmknet.events import Event as OpEvent
from vmknet.store import SqliteStore, StoreUnavailable, canonical_json, open_store
from vmknet.store.coordination import Election, Lease
from vmknet.store.etcd import EtcdStore
from vmknet.store.etcd_client import Address, Etcd, parse
from vmknet.store.hosts import HostStates
from vmknet.store.paths import default_store_location

# The same real etcd (started for this module as for that one) and a fresh prefix per test.
etcd_server, etcd_url = contract.etcd_server, contract.etcd_url
TTL = 2  # etcd's smallest lease TTL with its default election timeout


@pytest.mark.parametrize(("text", "address"), [
    ("etcd://127.0.0.1:2379/lab1", Address("127.0.0.1", 2379, "/lab1")),
    ("etcd://ctl.example:12379", Address("ctl.example", 12379, "/vmknet")),
    ("etcd://h", Address("h", 2379, "/vmknet")),
    ("etcd://[2001:db8::1]:2379/a/b/", Address("2001:db8::1", 2379, "/a/b")),
    ("etcd:/127.0.0.1:2379/lab1", Address("127.0.0.1", 2379, "/lab1")),  # what Path() makes
])
def test_addresses(text: str, address: Address) -> None:
    assert parse(text) == address
    assert parse(address.url) == address


@given(host=st.one_of(st.from_regex(r"[a-z][a-z0-9-]{0,20}(\.[a-z][a-z0-9-]{0,10}){0,2}",
                                    fullmatch=True),
                      st.ip_addresses().map(str)),
       port=st.integers(1, 65535),
       prefix=st.lists(st.from_regex(r"[A-Za-z0-9_.-]{1,12}", fullmatch=True)
                       .filter(lambda p: p not in (".", "..")), max_size=3))
def test_an_address_survives_its_url(host: str, port: int, prefix: list[str]) -> None:
    address = Address(host, port, "/" + "/".join(prefix) if prefix else "/vmknet")
    assert parse(address.url) == address
    assert parse(str(Path(address.url))) == address  # folded by a click/pathlib Path


@pytest.mark.parametrize("text", ["etcd://", "etcd://h:notaport", "etcd://h:2379/x?y=1",
                                  "etcd://h:99999", "etcd://h/.", "etcd://h/a/../b"])
def test_bad_addresses_are_invalid_arguments(text: str) -> None:
    with pytest.raises(InvalidArgument, match="Bad etcd store address"):
        parse(text)


def test_the_location_decides_the_backend(monkeypatch: pytest.MonkeyPatch,
                                          tmp_path: Path) -> None:
    monkeypatch.setenv("VMKNET_STORE", "etcd://127.0.0.1:1/x")
    assert default_store_location() == "etcd://127.0.0.1:1/x"
    assert isinstance(open_store(), EtcdStore)
    assert isinstance(open_store(Path("etcd://127.0.0.1:1/x")), EtcdStore)
    monkeypatch.setenv("VMKNET_STORE", str(tmp_path / "inv.db"))
    assert isinstance(open_store(), SqliteStore)
    assert open_store().location == str(tmp_path / "inv.db")


def test_an_etcd_store_has_no_file(etcd_url: str) -> None:
    with pytest.raises(InvalidArgument, match="not a local file"):
        _ = open_store(etcd_url).path


def test_the_keys_hold_the_same_canonical_json_as_sqlite(etcd_url: str) -> None:
    store = EtcdStore(etcd_url)
    with store.transaction() as txn:
        txn.save(lab(2))
    raw = Etcd(parse(etcd_url))
    assert raw.get("datacenter").value == canonical_json(lab(2))  # type: ignore[union-attr]
    assert raw.get("version").value == "1"  # type: ignore[union-attr]
    assert raw.get("lock") is None  # released by the commit


def test_events_are_bounded(etcd_url: str) -> None:
    store = EtcdStore(etcd_url, events_kept=5)
    for i in range(4):
        with store.transaction() as txn:
            txn.record([OpEvent("R", "", f"e{i}.{j}") for j in range(2)])
    kept = Etcd(parse(etcd_url)).range("events/", prefix=True)
    assert len(kept) == 5
    assert [e.message for e in store.events(limit=100)] == [
        "e1.1", "e2.0", "e2.1", "e3.0", "e3.1"]
    assert store.events(limit=0) == []


def test_a_waiting_writer_gives_up_after_lock_wait(etcd_url: str) -> None:
    holder, waiter = EtcdStore(etcd_url), EtcdStore(etcd_url, lock_wait=0.3)
    with holder.transaction() as txn:
        start = time.monotonic()
        with pytest.raises(ConcurrentModification, match="stayed locked"), waiter.transaction():
            pass
        assert 0.3 <= time.monotonic() - start < 2
        txn.save(lab(1))
    assert waiter.read()[0] == 1


def test_a_lost_lock_commits_nothing(etcd_url: str) -> None:
    store = EtcdStore(etcd_url)
    with pytest.raises(ConcurrentModification, match="Lost the lock"), \
            store.transaction() as txn:
        txn.save(lab(1))
        Etcd(parse(etcd_url)).delete("lock")  # as if its lease had expired
    assert store.read()[0] == 0


HOLDER = textwrap.dedent("""
    import sys, time
    from vmknet.model import Datacenter, new_host
    from vmknet.store.etcd import EtcdStore

    store = EtcdStore(sys.argv[1], lock_ttl=int(sys.argv[2]))
    with store.transaction() as txn:
        dc = txn.datacenter
        dc.hosts["esx66"] = new_host()
        txn.save(dc)
        print("holding", flush=True)
        time.sleep(600)
""")


def kill_when_ready(proc: subprocess.Popen[str], ready: str) -> None:
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert line.strip() == ready, (line, proc.stderr.read() if proc.stderr else "")
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()


def test_a_writer_killed_inside_a_transaction_leaves_nothing_and_frees_the_lock_in_its_ttl(
        etcd_url: str) -> None:
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, etcd_url, str(TTL)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    kill_when_ready(proc, "holding")
    start = time.monotonic()
    store = EtcdStore(etcd_url)
    with store.transaction() as txn:
        waited = time.monotonic() - start
        assert "esx66" not in txn.datacenter.hosts
        txn.save(lab(1))
    assert waited < TTL + 2
    assert store.read() == (1, lab(1))


def test_store_unavailable_is_one_clear_error() -> None:
    store = EtcdStore("etcd://127.0.0.1:9/nowhere")  # discard port: nothing listens
    for call in (store.read, lambda: store.meta("lab"), store.events):
        with pytest.raises(StoreUnavailable, match=r"etcd://127.0.0.1:9/nowhere did not answer"):
            call()
    with pytest.raises(StoreUnavailable), store.transaction():
        pass
    result = CliRunner().invoke(main, ["--store", "etcd://127.0.0.1:9/nowhere", "show"])
    assert result.exit_code != 0
    assert result.output.count("\n") == 1
    assert result.output.startswith("Error [StoreUnavailable]: The etcd store")


def test_the_cli_works_on_an_etcd_store(etcd_url: str, tmp_path: Path) -> None:
    desired = tmp_path / "lab.yaml"
    desired.write_text(json.dumps(json.loads(canonical_json(lab(2)))))
    runner = CliRunner()
    applied = runner.invoke(main, ["--store", etcd_url, "apply", "--yes", str(desired)])
    assert applied.exit_code == 0, applied.output
    assert EtcdStore(etcd_url).read() == (1, lab(2))
    shown = runner.invoke(main, ["show"], env={"VMKNET_STORE": etcd_url})
    assert shown.exit_code == 0, shown.output
    assert "esx02" in shown.output


# --- leases and election -----------------------------------------------------------------


def test_a_kept_lease_outlives_its_ttl_and_a_stopped_one_expires(etcd_url: str) -> None:
    address, etcd = parse(etcd_url), Etcd(parse(etcd_url))
    lease = Lease(address, TTL).start()
    lease.attach("hosts/esx01/alive", "agent-1")
    time.sleep(TTL + 1)
    assert etcd.get("hosts/esx01/alive") is not None  # the keepalive thread did its job
    lease.stop()
    deadline = time.monotonic() + TTL + 3
    while etcd.get("hosts/esx01/alive") is not None and time.monotonic() < deadline:
        time.sleep(0.1)
    assert etcd.get("hosts/esx01/alive") is None
    assert lease.keepalive() == -1
    assert lease.expired.is_set()


def test_revoking_a_lease_deletes_its_keys_at_once(etcd_url: str) -> None:
    etcd = Etcd(parse(etcd_url))
    with Lease(parse(etcd_url), 30) as lease:
        lease.attach("a", "1")
        assert etcd.get("a") is not None
    assert etcd.get("a") is None


CANDIDATE = textwrap.dedent("""
    import sys, time
    from vmknet.store.coordination import Election
    from vmknet.store.etcd_client import parse

    election = Election(parse(sys.argv[1]), sys.argv[2], ttl=int(sys.argv[3]))
    assert election.campaign(timeout=10)
    print("leading", flush=True)
    time.sleep(600)
""")


def test_a_second_controller_leads_within_the_ttl_when_the_first_dies(etcd_url: str) -> None:
    address = parse(etcd_url)
    first = subprocess.Popen([sys.executable, "-c", CANDIDATE, etcd_url, "ctl-a", str(TTL)],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert first.stdout is not None
    assert first.stdout.readline().strip() == "leading"
    second = Election(address, "ctl-b", ttl=TTL)
    assert not second.campaign(timeout=TTL + 1)  # the first keeps its lease alive
    assert second.leader() == "ctl-a"
    assert not second.is_leader()
    os.kill(first.pid, signal.SIGKILL)
    first.wait()
    start = time.monotonic()
    assert second.campaign(timeout=TTL + 5)
    assert time.monotonic() - start < TTL + 2
    assert second.is_leader()
    assert second.leader() == "ctl-b"
    second.resign()
    assert second.leader() is None
    assert not second.is_leader()
    third = Election(address, "ctl-c", ttl=TTL)
    assert third.campaign(timeout=0.5)  # a resignation hands over at once
    third.resign()


def test_one_leader_among_racing_candidates(etcd_url: str) -> None:
    address = parse(etcd_url)
    candidates = [Election(address, f"ctl-{i}", ttl=TTL) for i in range(4)]
    won: list[str] = []
    threads = [threading.Thread(target=lambda c=c: c.try_lead() and won.append(c.candidate))
               for c in candidates]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(won) == 1
    assert candidates[0].leader() == won[0]
    for c in candidates:
        c.resign()


# --- host state --------------------------------------------------------------------------


def test_desired_generations_go_up_by_one_even_when_controllers_race(etcd_url: str) -> None:
    address = parse(etcd_url)
    got: list[int] = []

    def write(i: int) -> None:
        states = HostStates(address)  # one client per thread, as per process
        got.extend(states.set_desired("esx01", {"writer": i, "n": k}) for k in range(5))

    threads = [threading.Thread(target=write, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(got) == list(range(1, 21))
    record = HostStates(address).desired("esx01")
    assert record is not None and record.generation == 20


def test_observed_state_and_liveness(etcd_url: str) -> None:
    address = parse(etcd_url)
    states = HostStates(address)
    assert states.desired("esx01") is None and states.observed("esx01") is None
    generation = states.set_desired("esx01", {"vmk": ["vmk0"]})
    revision = states.report_observed("esx01", generation, {"condition": "Available"})
    observed = states.observed("esx01")
    assert observed is not None
    assert (observed.generation, observed.data, observed.revision) == (
        1, {"condition": "Available"}, revision)
    with Lease(address, 30) as one, Lease(address, 30) as two:
        states.announce(one, "esx01")
        states.announce(two, "esx02")
        assert states.alive() == ["esx01", "esx02"]
        one.revoke()
        assert states.alive() == ["esx02"]
    assert states.alive() == []
    with pytest.raises(InvalidArgument):
        states.set_desired("../esx01", {})


def test_etcd_server_fixture_is_loopback(etcd_server: contract.EtcdServer) -> None:
    assert etcd_server.client_url.startswith("http://127.0.0.1:")
