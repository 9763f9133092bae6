"""The SQLite inventory store: versions, transactions, rollback, optimistic saves, events.

The concurrency test runs real processes against one file: SQLite's locking
is per process, so threads would not prove that no update is lost.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from contextlib import closing
from pathlib import Path

import pytest
from builders import lab, vmotion_lab

from vmknet.errors import ConcurrentModification, InvalidArgument
from vmknet.events import Event as OpEvent
from vmknet.model import Datacenter, new_host
from vmknet.state import canonical
from vmknet.store import Event, Store, default_store_path
from vmknet.store.schema import connect


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store(tmp_path / "inventory.db")


def saved(store: Store, dc: Datacenter, events: list[OpEvent] | None = None) -> int:
    with store.transaction() as txn:
        return txn.save(dc, events or [])


def test_empty_store_reads_as_an_empty_datacenter_without_creating_a_file(store: Store) -> None:
    assert store.read() == (0, Datacenter())
    assert store.events() == []
    assert not store.path.exists()


def test_save_bumps_the_version_and_reads_back_equal(store: Store) -> None:
    dc = vmotion_lab(2)
    assert saved(store, dc) == 1
    assert store.read() == (1, dc)
    dc.hosts["esx03"] = new_host()
    assert saved(store, dc) == 2
    assert store.read() == (2, dc)


def test_stored_text_is_the_canonical_json(store: Store) -> None:
    dc = vmotion_lab(2)
    saved(store, dc)
    with closing(connect(store.path)) as conn:
        (text,) = conn.execute("SELECT datacenter FROM inventory").fetchone()
    assert json.loads(text) == canonical(dc)


def test_transaction_hands_out_a_fresh_object(store: Store) -> None:
    saved(store, lab(1))
    with store.transaction() as txn:
        assert txn.version == 1
        txn.datacenter.hosts.clear()  # mutating it without saving changes nothing
    assert store.read() == (1, lab(1))


def test_several_saves_in_one_transaction_bump_once(store: Store) -> None:
    with store.transaction() as txn:
        txn.save(lab(1))
        assert txn.save(lab(2)) == 1
    assert store.read() == (1, lab(2))


def test_exception_rolls_back_and_leaves_the_file_byte_identical(store: Store) -> None:
    saved(store, lab(1))
    before = store.path.read_bytes()
    with pytest.raises(RuntimeError), store.transaction() as txn:
        txn.save(lab(3), [OpEvent("EX-1", "hosts/esx01/vmknics/vmk0", "vMotion removed")])
        raise RuntimeError("refused by a rule")
    assert store.path.read_bytes() == before
    assert store.read() == (1, lab(1))
    assert store.events() == []


def test_unchanged_save_writes_nothing(store: Store) -> None:
    saved(store, lab(2))
    before = store.path.read_bytes()
    assert saved(store, lab(2), [OpEvent("NS-7", "x", "ignored: nothing changed")]) == 1
    assert store.path.read_bytes() == before
    assert store.read()[0] == 1
    assert store.events() == []


def test_reading_leaves_the_file_byte_identical(store: Store) -> None:
    saved(store, lab(2))
    before = store.path.read_bytes()
    store.read()
    store.events()
    assert store.path.read_bytes() == before


def test_saving_an_empty_datacenter_to_an_empty_store_is_a_no_op(store: Store) -> None:
    assert saved(store, Datacenter()) == 0
    assert store.read() == (0, Datacenter())


def test_save_if_refuses_when_the_version_moved(store: Store) -> None:
    version, _ = store.read()
    saved(store, lab(1))  # someone else applied in between
    before = store.path.read_bytes()
    with pytest.raises(ConcurrentModification) as info:
        store.save_if(version, lab(2), [])
    assert info.value.code == "ConcurrentModification"
    assert info.value.details == {"expected": 0, "actual": 1}
    assert store.path.read_bytes() == before
    assert store.save_if(1, lab(2), []) == 2


def test_events_are_recorded_with_time_and_version_oldest_first(store: Store) -> None:
    saved(store, lab(1), [OpEvent("NS-7", "hosts/esx01/netstacks/vmotion", "created")])
    saved(store, vmotion_lab(1), [OpEvent("EX-1", "hosts/esx01/vmknics/vmk0", "vMotion off"),
                                  OpEvent("EX-1", "hosts/esx01/vmknics/vmk9", "vMotion off")])
    events = store.events()
    assert [(e.rule, e.path, e.version) for e in events] == [
        ("NS-7", "hosts/esx01/netstacks/vmotion", 1),
        ("EX-1", "hosts/esx01/vmknics/vmk0", 2),
        ("EX-1", "hosts/esx01/vmknics/vmk9", 2),
    ]
    assert all(e.time and e.time.endswith("+00:00") for e in events)
    assert store.events(limit=1) == [events[-1]]
    assert events[0] == Event("NS-7", "hosts/esx01/netstacks/vmotion", "created",
                              events[0].time, 1)


def test_store_creates_its_directory(tmp_path: Path) -> None:
    store = Store(tmp_path / "a" / "b" / "inventory.db")
    saved(store, lab(1))
    assert store.read()[0] == 1


def test_the_file_is_in_wal_mode(store: Store) -> None:
    saved(store, lab(1))
    with closing(connect(store.path)) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_default_store_path(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("VMKNET_STORE", str(tmp_path / "x.db"))
    assert default_store_path() == tmp_path / "x.db"
    monkeypatch.delenv("VMKNET_STORE")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    assert default_store_path() == tmp_path / "vmknet" / "inventory.db"
    monkeypatch.setenv("XDG_DATA_HOME", "relative/ignored")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert default_store_path() == tmp_path / ".local/share/vmknet/inventory.db"


WORKER = textwrap.dedent("""
    import sys
    from vmknet.model import Cluster, Host
    from vmknet.store import Store

    store, worker, rounds = Store(sys.argv[1]), sys.argv[2], int(sys.argv[3])
    for i in range(rounds):
        with store.transaction() as txn:
            dc = txn.datacenter
            dc.hosts[f"{worker}-{i}"] = Host()
            # a read-modify-write of one shared list: any lost update drops an entry
            counter = dc.clusters.setdefault("counter", Cluster())
            counter.hosts.append(f"{worker}-{i}")
            txn.save(dc)
""")


@pytest.mark.parametrize("existing", [True, False], ids=["existing", "created-by-the-race"])
def test_concurrent_writers_never_lose_an_update(store: Store, existing: bool) -> None:
    workers, rounds = 8, 20
    if existing:
        saved(store, lab(1))
    base = store.read()[0]
    procs = [subprocess.Popen([sys.executable, "-c", WORKER, str(store.path), f"w{n}",
                               str(rounds)], stderr=subprocess.PIPE, text=True)
             for n in range(workers)]
    for proc in procs:
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
    version, dc = store.read()
    expected = {f"w{n}-{i}" for n in range(workers) for i in range(rounds)}
    assert version == base + workers * rounds
    assert expected <= dc.hosts.keys()
    assert sorted(dc.clusters["counter"].hosts) == sorted(expected)


def test_a_file_that_is_not_an_inventory_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "lab.yaml"
    path.write_text("hosts: {}\n" * 200)
    store = Store(path)
    with pytest.raises(InvalidArgument, match=r"Cannot use .* as a vmknet inventory"):
        store.read()
    with pytest.raises(InvalidArgument), store.transaction():
        pass
    assert path.read_text() == "hosts: {}\n" * 200
