"""Lab binding without a kernel: the store's meta table, the realising inventory, the API.

The realiser is a MemoryBackend (the kernel's in-memory twin) or a fake, so
these run anywhere; the real namespaces are tests/kernel/test_lab_*.py.
"""

from __future__ import annotations

import sqlite3
from contextlib import closing
from functools import partial
from pathlib import Path

import pytest
from builders import lab
from click.testing import CliRunner

from vmknet.cli.main import main
from vmknet.dataplane.apply import FaultInjector
from vmknet.dataplane.kops import AddLink, CreateNamespace
from vmknet.dataplane.kstate import Link
from vmknet.dataplane.memory import MemoryBackend
from vmknet.dataplane.plan import plan
from vmknet.dataplane.render import render
from vmknet.errors import DataplaneError, InvalidArgument, NotFound, RuleViolation
from vmknet.inventory import Inventory, Realiser
from vmknet.lab import LAB_KEY, Lab, bound_lab, require_lab
from vmknet.lab.lifecycle import op_namespace
from vmknet.lab.realise import KernelRealiser, management_targets
from vmknet.model import Datacenter
from vmknet.ops import host as host_ops
from vmknet.store import Store
from vmknet.store.schema import connect


class Fake:
    """A realiser that records its calls and raises `error` when given one."""

    def __init__(self, error: Exception | None = None) -> None:
        self.calls: list[tuple[Lab, Datacenter]] = []
        self.error = error

    def realise(self, lab_: Lab, dc: Datacenter) -> None:
        self.calls.append((lab_, dc))
        if self.error is not None:
            raise self.error


def _bound(tmp_path: Path, realiser: Realiser) -> Inventory:
    inv = Inventory(Store(tmp_path / "inv.db"), realiser)
    inv.bind(Lab.named("u1"), lab(2))
    return inv


def test_meta_is_set_read_and_deleted_without_a_new_version(tmp_path: Path) -> None:
    store = Store(tmp_path / "inv.db")
    assert store.meta(LAB_KEY) is None  # no file yet
    with store.transaction() as txn:
        txn.save(lab(1))
    with store.transaction() as txn:
        txn.set_meta(LAB_KEY, "one")
    assert store.meta(LAB_KEY) == "one" and store.read()[0] == 1
    with store.transaction() as txn:
        txn.set_meta(LAB_KEY, None)
    assert store.meta(LAB_KEY) is None


def test_a_version_1_file_is_migrated_in_place(tmp_path: Path) -> None:
    path = tmp_path / "v1.db"
    with closing(connect(path)) as conn:  # what schema version 1 wrote
        conn.execute("CREATE TABLE inventory (id INTEGER PRIMARY KEY CHECK (id = 1),"
                     " version INTEGER NOT NULL, datacenter TEXT NOT NULL)")
        conn.execute("CREATE TABLE events (id INTEGER PRIMARY KEY, time TEXT NOT NULL,"
                     " version INTEGER NOT NULL, rule TEXT NOT NULL, path TEXT NOT NULL,"
                     " message TEXT NOT NULL)")
        conn.execute("INSERT INTO inventory VALUES (1, 7, '{}')")
        conn.execute("PRAGMA user_version = 1")
    store = Store(path)
    assert store.meta(LAB_KEY) is None and store.read()[0] == 7
    with store.transaction() as txn:
        txn.set_meta(LAB_KEY, "lab")
    assert store.meta(LAB_KEY) == "lab" and store.read()[0] == 7
    with closing(sqlite3.connect(path)) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == 2


def test_lab_api(tmp_path: Path) -> None:
    inv = Inventory(Store(tmp_path / "inv.db"))
    assert bound_lab(inv) is None
    with pytest.raises(NotFound, match=r"^No lab is up for this inventory: run 'vmknet lab up'$"):
        require_lab(inv)
    with pytest.raises(InvalidArgument):
        Lab.named("no/slash")
    assert Lab.named("lab") == Lab("lab", "vmkl-lab.")


def test_unbound_store_never_realises(tmp_path: Path) -> None:
    fake = Fake()
    inv = Inventory(Store(tmp_path / "inv.db"), fake)
    inv.apply(lab(2))
    inv.run(partial(host_ops.cluster_add, name="cl9"))
    assert fake.calls == []


def test_bound_store_realises_every_change_before_commit(tmp_path: Path) -> None:
    fake = Fake()
    inv = _bound(tmp_path, fake)
    assert bound_lab(inv) == Lab("u1", "vmkl-u1.")
    inv.run(partial(host_ops.cluster_add, name="cl9"))
    assert [c[0].name for c in fake.calls] == ["u1", "u1"]
    assert "cl9" in fake.calls[-1][1].clusters and "cl9" in inv.read().clusters
    inv.apply(inv.read())  # no store change: re-applied all the same (repairs drift)
    assert len(fake.calls) == 3


def test_a_kernel_failure_leaves_the_store_unchanged(tmp_path: Path) -> None:
    fake = Fake()
    inv = _bound(tmp_path, fake)
    before = inv.store.read()
    fake.error = DataplaneError("step 1 of 3 failed (...): EIO; rolled back")
    with pytest.raises(DataplaneError):
        inv.run(partial(host_ops.cluster_add, name="cl9"))
    assert inv.store.read() == before
    assert inv.events() == []


def test_a_req5_rollback_is_refused_and_logged(tmp_path: Path) -> None:
    fake = Fake()
    inv = _bound(tmp_path, fake)
    before = inv.store.read()
    fake.error = RuleViolation("REQ-5", "... rolled back: no echo", hosts=["esx01"],
                               rolled_back=True)
    with pytest.raises(RuleViolation, match="rolled back"):
        inv.run(partial(host_ops.cluster_add, name="cl9"))
    assert inv.store.read() == before
    assert [(e.rule, e.path) for e in inv.events()] == [("REQ-5", "hosts/esx01")]


def test_memory_kernel_follows_the_store_and_a_fault_changes_neither(tmp_path: Path) -> None:
    memory = MemoryBackend()
    inv = _bound(tmp_path, KernelRealiser(memory, check_management=False))
    assert plan(memory.state, render(lab(2), "u1")) == []
    kernel, store = memory.read("vmkl-u1."), inv.store.read()
    faulty = KernelRealiser(FaultInjector(memory, fail_at=3), check_management=False)
    with pytest.raises(DataplaneError, match="step 4 of"):
        Inventory(inv.store, faulty).run(partial(host_ops.host_add, name="esx09"))
    assert memory.read("vmkl-u1.") == kernel and inv.store.read() == store
    inv.run(partial(host_ops.host_add, name="esx09"))
    assert "vmkl-u1.esx09" in memory.state.namespaces


def test_management_targets_are_static_ipv4_management_adapters() -> None:
    targets = management_targets(lab(2))
    assert [(t.host, t.vmk) for t in targets] == [("esx01", "vmk0"), ("esx02", "vmk0")]


def test_op_namespace() -> None:
    assert op_namespace(CreateNamespace("vmkl-a.x")) == "vmkl-a.x"
    assert op_namespace(AddLink(Link("vmkl-a.y", "br0", "bridge"))) == "vmkl-a.y"


def test_status_without_a_lab_exits_3(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["--store", str(tmp_path / "s.db"), "lab", "status"])
    assert result.exit_code == 3
    assert "No lab is up for this inventory" in result.output
