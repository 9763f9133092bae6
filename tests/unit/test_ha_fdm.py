"""FDM's receiver and tick without a network: what it accepts, refuses and does."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from vmknet.ha import datastore, wire
from vmknet.ha.config import Datastore, parse
from vmknet.ha.fdm import Fdm
from vmknet.ha.restart import Vm

KEY = "cd" * 32
MiB = 1 << 20


def _raw() -> dict[str, Any]:
    member: dict[str, Any] = {"datastores": []}
    return {"cluster": "c1", "key": KEY,
            "members": {"h1": member | {"addresses": ["198.18.0.11"]},
                        "h2": member | {"addresses": ["198.18.0.12", "198.18.1.12"]}},
            "isolationAddresses": [], "isolationResponse": "none", "restartPriority": "medium",
            "vmRestartPriority": {}, "heartbeatDatastores": 2,
            "admission": {"enabled": True, "failoverPercent": 25, "hostMemory": 1 << 30}}


class Side:
    host, lab = "h1", "unit"

    def __init__(self) -> None:
        self.started: list[Vm] = []

    def vms(self) -> list[Vm]:
        return []

    def start_vm(self, vm: Vm) -> None:
        self.started.append(vm)

    def stop_vm(self, name: str) -> None:
        raise AssertionError("not in these tests")

    def controller(self, params: dict[str, Any]) -> dict[str, Any]:
        raise OSError("no controller here")

    def store(self, ds: Datastore) -> datastore.Store:
        raise AssertionError("no datastores here")


@pytest.fixture
def fdm(tmp_path: Path) -> Fdm:
    f = Fdm(Side(), tmp_path)
    f._configure(parse(_raw(), "h1"), _raw())  # binding 198.18.0.11 fails here: an event
    return f


def _msg(**over: Any) -> dict[str, Any]:
    return {"kind": "hb", "from": "h2", "cluster": "c1", "to": None, "at": time.time(),
            "role": "secondary", "primary": None, "datastores": 0, "heard": [],
            "vms": [{"name": "vm1", "memory": MiB, "dirtyRate": 0, "disk": None}],
            "isolated": False} | over


def _sealed(**over: Any) -> bytes:
    return wire.seal(bytes.fromhex(KEY), _msg(**over))


def test_a_peers_heartbeat_counts_for_its_link(fdm: Fdm) -> None:
    fdm._accept("198.18.0.11", "198.18.1.12", _sealed())
    peer = fdm.peers["h2"]
    assert list(peer.links) == [("198.18.1.12", "198.18.0.11")]
    assert peer.vms == [Vm("vm1", MiB)]


@pytest.mark.parametrize(("source", "over"), [
    ("198.18.0.99", {}),  # not one of h2's management addresses
    ("198.18.0.12", {"from": "h9"}),  # not a member
    ("198.18.0.12", {"from": "h1"}),  # itself
    ("198.18.0.12", {"cluster": "c2"}),
    ("198.18.0.12", {"to": "h3"}),
    ("198.18.0.12", {"at": time.time() - 3600}),  # stale
])
def test_what_is_not_a_peers_is_refused_before_anything_changes(
        fdm: Fdm, source: str, over: dict[str, Any]) -> None:
    with pytest.raises(wire.HaWireError):
        fdm._accept("198.18.0.11", source, _sealed(**over))
    assert fdm.peers["h2"].links == {}


def test_a_replayed_heartbeat_is_refused(fdm: Fdm) -> None:
    data = _sealed()
    fdm._accept("198.18.0.11", "198.18.0.12", data)
    with pytest.raises(wire.HaWireError, match="replayed"):
        fdm._accept("198.18.0.11", "198.18.0.12", data)


def test_a_restart_request_acts_once_however_many_links_carry_it(fdm: Fdm) -> None:
    side = fdm.side
    assert isinstance(side, Side)
    req = {"kind": "restart", "to": "h1", "id": "r1",
           "vm": {"name": "vm1", "memory": MiB, "dirtyRate": 0, "disk": None}}
    for source in ("198.18.0.12", "198.18.1.12"):
        base = _msg()
        msg = {k: base[k] for k in ("from", "cluster", "at")} | req
        fdm._accept("198.18.0.11", source, wire.seal(bytes.fromhex(KEY), msg))
    deadline = time.monotonic() + 5
    while not side.started and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.1)
    assert side.started == [Vm("vm1", MiB)]


def test_a_restart_request_to_nobody_in_particular_is_refused(fdm: Fdm) -> None:
    base = _msg()
    msg = {k: base[k] for k in ("from", "cluster", "at")} | {
        "kind": "restart", "to": None, "id": "r2",
        "vm": {"name": "vm1", "memory": MiB, "dirtyRate": 0, "disk": None}}
    with pytest.raises(wire.HaWireError):
        fdm._accept("198.18.0.11", "198.18.0.12", wire.seal(bytes.fromhex(KEY), msg))


def _view(host: str, role: str, primary: str, hosts: dict[str, str], at: float,
          isolated: bool = False) -> dict[str, Any]:
    return {"host": host, "role": role, "primary": primary, "isolated": isolated, "at": at,
            "hosts": {h: {"state": s, "links": [], "datastores": {}} for h, s in hosts.items()},
            "vms": {}, "pending": {}}


def test_cluster_status_reports_each_sides_primary_and_drops_stale_views() -> None:
    from vmknet.ha import status

    now = 1000.0
    views = {
        "a": _view("a", "secondary", "b", {"a": "live", "b": "live", "c": "partitioned"}, now),
        "b": _view("b", "primary", "b", {"a": "live", "b": "live", "c": "partitioned"}, now),
        "c": _view("c", "primary", "c", {"a": "partitioned", "b": "partitioned", "c": "live"},
                   now),
        "d": _view("d", "primary", "d", {"d": "live"}, now - 60),  # its agent is gone
    }
    got = status.cluster_status("cl", ["a", "b", "c", "d"], views.get, now)
    assert got["primaries"] == ["b", "c"] and got["partitioned"]
    assert got["hosts"]["a"]["state"] == "live" and got["hosts"]["a"]["seenBy"] == "b"
    assert got["hosts"]["c"]["state"] == "live" and got["hosts"]["c"]["seenBy"] == "c"
    assert got["hosts"]["d"]["state"] == "unknown" and got["hosts"]["d"]["role"] is None


def test_an_isolated_host_is_shown_isolated_and_is_no_primary() -> None:
    from vmknet.ha import status

    now = 1000.0
    views = {"a": _view("a", "primary", "a", {"a": "live", "b": "isolated"}, now),
             "b": _view("b", "primary", "b", {"a": "partitioned", "b": "live"}, now,
                        isolated=True)}
    got = status.cluster_status("cl", ["a", "b"], views.get, now)
    assert got["primaries"] == ["a"] and not got["partitioned"]
    assert got["hosts"]["b"]["state"] == "isolated"
