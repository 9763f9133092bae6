"""A lab on an etcd store, without the kernel: the registry keeps an etcd address as given,
several controllers (or a lease TTL) on SQLite are refused before anything starts, and the
wanted number of controllers is kept for repairs (a missing standby is named)."""

from __future__ import annotations

from ipaddress import IPv4Interface
from pathlib import Path

import pytest
from builders import lab

from vmknet.controller import lab as mgmt
from vmknet.errors import InvalidArgument
from vmknet.lab import registry
from vmknet.model.physical import Controller
from vmknet.processes import lab_pids


@pytest.fixture(autouse=True)
def run_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv(registry.RUN_DIR_ENV, str(tmp_path / "run"))
    return tmp_path / "run"


def test_the_registry_keeps_an_etcd_address_as_it_is(tmp_path: Path) -> None:
    registry.record("a", "etcd://127.0.0.1:2379/dc1")
    registry.record("b", tmp_path / "x" / ".." / "inv.db")
    assert registry.store_of("a") == "etcd://127.0.0.1:2379/dc1"  # a Path would fold "//"
    assert registry.store_of("b") == (tmp_path / "inv.db").resolve()


@pytest.mark.parametrize(("controllers", "ttl"), [(2, None), (None, 3)])
def test_several_controllers_need_an_etcd_store(tmp_path: Path, controllers: int | None,
                                                ttl: int | None) -> None:
    dc = lab(2)
    dc.physical.controller = Controller(vlan=10, address=IPv4Interface("198.18.0.250/24"))
    with pytest.raises(InvalidArgument, match="etcd store"):
        mgmt.start("u1", dc, str(tmp_path / "inv.db"), controllers=controllers, lease_ttl=ttl)
    assert lab_pids("vmknet.controller", "u1") == []  # refused before starting anything


@pytest.mark.parametrize(("controllers", "ttl"), [(6, None), (2, 1), (9, 5)])
def test_out_of_range_controllers_or_ttl_are_refused(controllers: int, ttl: int | None) -> None:
    dc = lab(1)
    dc.physical.controller = Controller(vlan=10, address=IPv4Interface("198.18.0.250/24"))
    with pytest.raises(InvalidArgument, match="1 to 5 controllers"):
        mgmt.start("u3", dc, "etcd://127.0.0.1:9/none", controllers=controllers,
                   lease_ttl=ttl)
    assert lab_pids("vmknet.controller", "u3") == []


def test_the_wanted_controllers_are_kept_and_a_missing_standby_is_named() -> None:
    assert mgmt.settings("u2") == (1, 5)
    folder = registry.run_dir() / "u2"
    folder.mkdir(parents=True)
    (folder / "controllers.json").write_text('{"controllers": 3, "leaseTtl": 2}')
    assert mgmt.settings("u2") == (3, 2)
    dc = lab(1)
    assert mgmt.stopped("u2", dc)[:3] == ["controller", "standby controller",
                                          "standby controller"]
    mgmt.stop("u2")  # lab down forgets them
    assert mgmt.settings("u2") == (1, 5)


def test_lab_up_refuses_standbys_on_sqlite_before_building_anything(tmp_path: Path) -> None:
    from vmknet.inventory import Inventory
    from vmknet.lab import lifecycle

    inv = Inventory.open(tmp_path / "inv.db")
    with pytest.raises(InvalidArgument, match="etcd store"):
        lifecycle.up(inv, lifecycle.default_lab_file(), "u4", controllers=2)
    assert registry.store_of("u4") is None  # not even recorded
    assert inv.store.meta("lab") is None  # nor bound: the kernel was not touched
