"""One contract, two backends: every test here runs on SqliteStore and on EtcdStore.

The etcd backend runs against a real etcd (Debian's etcd-server) started once
per session on 127.0.0.1 with free ports and a temporary data directory; each
test gets a prefix of its own. A missing etcd binary fails the suite with how
to install it: the etcd store is part of the product, not an option to skip.
Concurrency uses real processes: locks are per process, threads would not
prove that no update is lost.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
import textwrap
import threading
import time
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from builders import lab, vmotion_lab

from vmknet.errors import ConcurrentModification
from vmknet.events import Event as OpEvent
from vmknet.inventory import Inventory
from vmknet.model import Datacenter, new_host
from vmknet.store import SqliteStore, StoreBackend, open_store
from vmknet.store.etcd import EtcdStore

INSTALL = ("the etcd store tests need a real etcd: install Debian's etcd-server "
           "(apt-get install -y etcd-server; scripts/setup.sh does it)")


@dataclass(frozen=True)
class EtcdServer:
    client_url: str  # http://127.0.0.1:PORT
    data_dir: Path

    def store_url(self, prefix: str) -> str:
        return self.client_url.replace("http://", "etcd://") + "/" + prefix


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(url + "/health", timeout=1) as answer:
            return bool(json.load(answer).get("health") == "true")
    except (OSError, ValueError):
        return False


@pytest.fixture(scope="session")
def etcd_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EtcdServer]:
    binary = shutil.which("etcd") or ("/usr/bin/etcd" if Path("/usr/bin/etcd").exists() else None)
    if binary is None:
        pytest.fail(f"etcd not found on PATH: {INSTALL}", pytrace=False)
    for _attempt in range(3):  # a free port can be taken between probe and bind: try again
        data = tmp_path_factory.mktemp("etcd")
        client, peer = f"http://127.0.0.1:{_free_port()}", f"http://127.0.0.1:{_free_port()}"
        log = (data / "etcd.log").open("w")
        proc = subprocess.Popen(
            [binary, "--name", "test", "--data-dir", str(data / "data"),
             "--listen-client-urls", client, "--advertise-client-urls", client,
             "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
             "--initial-cluster", f"test={peer}"],
            stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 15
        while proc.poll() is None and time.monotonic() < deadline and not _healthy(client):
            time.sleep(0.05)
        if proc.poll() is None and _healthy(client):
            try:
                yield EtcdServer(client, data)
            finally:
                proc.terminate()
                try:
                    proc.wait(10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
                log.close()
            return
        proc.kill()
        proc.wait()
        log.close()
    pytest.fail(f"etcd did not start: {(data / 'etcd.log').read_text()[-2000:]}", pytrace=False)


@pytest.fixture
def etcd_url(etcd_server: EtcdServer) -> str:
    """A fresh prefix on the session's etcd: each test sees an empty store."""
    return etcd_server.store_url(f"t-{uuid.uuid4().hex[:12]}")


@pytest.fixture(params=["sqlite", "etcd"])
def location(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return str(tmp_path / "inventory.db")
    return str(request.getfixturevalue("etcd_url"))


@pytest.fixture
def store(location: str) -> StoreBackend:
    return open_store(location)


def saved(store: StoreBackend, dc: Datacenter, events: list[OpEvent] | None = None) -> int:
    with store.transaction() as txn:
        return txn.save(dc, events or [])


def test_open_store_picks_the_backend_from_the_location(store: StoreBackend,
                                                        location: str) -> None:
    assert isinstance(store, EtcdStore if location.startswith("etcd:") else SqliteStore)
    assert open_store(store.location).location == store.location


def test_empty_store_reads_as_an_empty_datacenter(store: StoreBackend) -> None:
    assert store.read() == (0, Datacenter())
    assert store.events() == []
    assert store.meta("lab") is None


def test_save_bumps_the_version_and_reads_back_equal(store: StoreBackend) -> None:
    dc = vmotion_lab(2)
    assert saved(store, dc) == 1
    assert store.read() == (1, dc)
    dc.hosts["esx03"] = new_host()
    assert saved(store, dc) == 2
    assert store.read() == (2, dc)
    assert open_store(store.location).read() == (2, dc)  # another client sees it


def test_transaction_hands_out_a_fresh_object(store: StoreBackend) -> None:
    saved(store, lab(1))
    with store.transaction() as txn:
        txn.datacenter.hosts["esx09"] = new_host()  # mutated, never saved
    assert "esx09" not in store.read()[1].hosts
    assert store.read()[0] == 1


def test_several_saves_in_one_transaction_bump_once(store: StoreBackend) -> None:
    dc = lab(1)
    with store.transaction() as txn:
        assert txn.save(dc) == 1
        dc.hosts["esx02"] = new_host()
        assert txn.save(dc) == 1
    assert store.read() == (1, dc)


def test_an_exception_inside_leaves_nothing(store: StoreBackend) -> None:
    before = lab(1)
    saved(store, before, [OpEvent("R", "hosts/esx01", "first")])
    with pytest.raises(RuntimeError), store.transaction() as txn:
        dc = txn.datacenter
        dc.hosts["esx02"] = new_host()
        txn.save(dc, [OpEvent("R", "hosts/esx02", "second")])
        txn.set_meta("lab", "lab9")
        txn.record([OpEvent("R", "", "refused")])
        raise RuntimeError("boom")
    assert store.read() == (1, before)
    assert store.meta("lab") is None
    assert [e.message for e in store.events()] == ["first"]
    # ... and no lock is left behind: the next writer goes at once.
    start = time.monotonic()
    with store.transaction() as txn:
        assert txn.version == 1
    assert time.monotonic() - start < 1.0


def test_unchanged_save_writes_nothing(store: StoreBackend) -> None:
    dc = lab(1)
    saved(store, dc)
    with store.transaction() as txn:
        assert txn.save(dc.model_copy(deep=True), [OpEvent("R", "", "no-op")]) == 1
    assert store.read() == (1, dc)
    assert store.events() == []


def test_saving_an_empty_datacenter_to_an_empty_store_is_a_no_op(store: StoreBackend) -> None:
    assert saved(store, Datacenter()) == 0
    assert store.read() == (0, Datacenter())


def test_save_if_refuses_when_the_version_moved(store: StoreBackend) -> None:
    version, _ = store.read()
    assert store.save_if(version, lab(1)) == 1
    with pytest.raises(ConcurrentModification) as caught:
        store.save_if(version, lab(2))  # planned from version 0, the store is at 1
    assert caught.value.details == {"expected": 0, "actual": 1}
    assert store.read() == (1, lab(1))
    assert store.save_if(1, lab(2)) == 2


def test_events_are_recorded_with_time_and_version_oldest_first(store: StoreBackend) -> None:
    saved(store, lab(1), [OpEvent("HOST", "hosts/esx01", "added esx01")])
    saved(store, lab(2), [OpEvent("HOST", "hosts/esx02", "added esx02"),
                          OpEvent("VMK", "hosts/esx02/vmk0", "added vmk0")])
    with store.transaction() as txn:
        txn.record([OpEvent("REQ-5", "hosts/esx02", "rolled back")])
    events = store.events()
    assert [(e.rule, e.path, e.message, e.version) for e in events] == [
        ("HOST", "hosts/esx01", "added esx01", 1),
        ("HOST", "hosts/esx02", "added esx02", 2),
        ("VMK", "hosts/esx02/vmk0", "added vmk0", 2),
        ("REQ-5", "hosts/esx02", "rolled back", 2),
    ]
    assert all(e.time and e.time.endswith("+00:00") for e in events)
    assert [e.message for e in store.events(limit=2)] == ["added vmk0", "rolled back"]
    assert store.read()[0] == 2  # recording is not a change


def test_meta_is_transactional_and_does_not_change_the_version(store: StoreBackend) -> None:
    saved(store, lab(1))
    with store.transaction() as txn:
        txn.set_meta("lab", "lab1")
        assert txn.meta("lab") == "lab1"  # the transaction sees its own write ...
        assert store.meta("lab") is None  # ... nobody else does before the commit
    assert store.meta("lab") == "lab1"
    assert store.read()[0] == 1
    with store.transaction() as txn:
        txn.set_meta("lab", None)
        assert txn.meta("lab") is None
    assert store.meta("lab") is None


def test_inventory_works_on_the_store(location: str) -> None:
    inv = Inventory.open(location)
    plan = inv.plan(lab(2))
    inv.apply(lab(1))
    with pytest.raises(ConcurrentModification):
        inv.apply(plan)  # made before the apply of lab(1)
    assert inv.read() == lab(1)
    assert Inventory.open(location).store.read()[0] == 1


def test_threads_sharing_one_store_object_never_lose_an_update(store: StoreBackend) -> None:
    def add(worker: int) -> None:
        for i in range(5):
            with store.transaction() as txn:
                dc = txn.datacenter
                dc.hosts[f"t{worker}-{i}"] = new_host()
                txn.save(dc)

    threads = [threading.Thread(target=add, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    version, dc = store.read()
    assert version == 20
    assert set(dc.hosts) == {f"t{n}-{i}" for n in range(4) for i in range(5)}


WORKER = textwrap.dedent("""
    import sys
    from vmknet.model import Cluster, Host
    from vmknet.store import open_store

    store, worker, rounds = open_store(sys.argv[1]), sys.argv[2], int(sys.argv[3])
    for i in range(rounds):
        with store.transaction() as txn:
            dc = txn.datacenter
            dc.hosts[f"{worker}-{i}"] = Host()
            # a read-modify-write of one shared list: any lost update drops an entry
            counter = dc.clusters.setdefault("counter", Cluster())
            counter.hosts.append(f"{worker}-{i}")
            txn.save(dc)
            txn.record([])
""")


def test_concurrent_writers_in_several_processes_never_lose_an_update(
        store: StoreBackend) -> None:
    workers, rounds = 6, 15
    saved(store, lab(1))
    procs = [subprocess.Popen([sys.executable, "-c", WORKER, store.location, f"w{n}",
                               str(rounds)], stderr=subprocess.PIPE, text=True)
             for n in range(workers)]
    for proc in procs:
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
    version, dc = store.read()
    expected = {f"w{n}-{i}" for n in range(workers) for i in range(rounds)}
    assert version == 1 + workers * rounds
    assert expected <= dc.hosts.keys()
    assert sorted(dc.clusters["counter"].hosts) == sorted(expected)

