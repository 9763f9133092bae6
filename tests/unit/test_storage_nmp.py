"""Path selection policies and the multipath device's failover, without a network (STO-4)."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from typing import Any, cast

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vmknet.model import NmpDevice
from vmknet.model.storage import Psp
from vmknet.ops.storage import nmp_device_set, nmp_fixed_set, nmp_roundrobin_set
from vmknet.storage.initiator import IscsiError, Session
from vmknet.storage.nmp import MultipathDevice
from vmknet.storage.paths import StoragePath
from vmknet.storage.psp import Selector

POLICIES: list[Psp] = ["VMW_PSP_FIXED", "VMW_PSP_MRU", "VMW_PSP_RR"]
states = st.lists(st.booleans(), min_size=1, max_size=6)


def test_round_robin_switches_after_iops_ios() -> None:
    sel = Selector("VMW_PSP_RR", 3, iops=2)
    assert [sel.choose([True] * 3) for _ in range(7)] == [0, 0, 1, 1, 2, 2, 0]


def test_round_robin_skips_a_dead_path() -> None:
    sel = Selector("VMW_PSP_RR", 3, iops=1)
    assert [sel.choose([True, False, True]) for _ in range(4)] == [0, 2, 0, 2]


def test_mru_stays_after_the_first_path_returns_and_fixed_goes_back() -> None:
    mru, fixed = Selector("VMW_PSP_MRU", 2), Selector("VMW_PSP_FIXED", 2)
    for sel in (mru, fixed):
        assert sel.choose([True, True]) == 0
        assert sel.choose([False, True]) == 1
    assert mru.choose([True, True]) == 1
    assert fixed.choose([True, True]) == 0


def test_fixed_prefers_its_preferred_path() -> None:
    sel = Selector("VMW_PSP_FIXED", 3, preferred=2)
    assert sel.choose([True, True, True]) == 2
    assert sel.working([True, True, True]) == [2]
    assert sel.choose([True, True, False]) == 0


@given(st.sampled_from(POLICIES), st.integers(1, 5), st.lists(states, min_size=1, max_size=30))
def test_a_chosen_path_is_always_alive(policy: Psp, iops: int, rounds: list[list[bool]]) -> None:
    count = len(rounds[0])
    sel = Selector(policy, count, iops=iops)
    for alive in rounds:
        alive = (alive * count)[:count]
        chosen = sel.choose(alive)
        if any(alive):
            assert chosen is not None and alive[chosen]
            assert all(alive[i] for i in sel.working(alive))
        else:
            assert chosen is None and sel.working(alive) == []


@given(st.integers(1, 6), st.integers(1, 10), st.integers(1, 200))
def test_round_robin_spreads_evenly_over_live_paths(count: int, iops: int, n: int) -> None:
    sel = Selector("VMW_PSP_RR", count, iops=iops)
    used = [0] * count
    for _ in range(n * count * iops):
        i = sel.choose([True] * count)
        assert i is not None
        used[i] += 1
    assert max(used) - min(used) <= iops


def test_the_operations_keep_the_policy_and_check_it() -> None:
    from vmknet.errors import InvalidArgument
    from vmknet.model import Datacenter

    dc = Datacenter.model_validate({"hosts": {"esx01": {}}})
    with pytest.raises(InvalidArgument, match="does not use VMW_PSP_RR"):
        nmp_roundrobin_set(dc, "esx01", "naa.6x", 10)
    nmp_device_set(dc, "esx01", "naa.6x", "VMW_PSP_RR")
    nmp_roundrobin_set(dc, "esx01", "naa.6x", 10)
    assert dc.host("esx01").storage.nmp["naa.6x"] == NmpDevice(psp="VMW_PSP_RR", iops=10)
    with pytest.raises(InvalidArgument, match="does not use VMW_PSP_FIXED"):
        nmp_fixed_set(dc, "esx01", "naa.6x", "vmhba64:C1:T0:L1")
    nmp_device_set(dc, "esx01", "naa.6x", None, default=True)
    assert dc.host("esx01").storage.nmp == {}


# ------------------------------------------------- the device over fake sessions


class FakeSession:
    """Stands in for an initiator session: a path that works until told to fail."""

    def __init__(self, path: StoragePath, broken: set[str], log: list[str]) -> None:
        self.path, self.broken, self.log = path, broken, log
        self.sock = socket.socket()  # settimeout and close are all the device uses

    def read(self, lun: int, lba: int, blocks: int, block: int) -> bytes:
        if self.path.runtime_name in self.broken:
            raise TimeoutError("timed out")
        self.log.append(self.path.runtime_name)
        return bytes(blocks * block)

    def write(self, lun: int, lba: int, data: bytes, block: int) -> None:
        if self.path.runtime_name in self.broken:
            raise IscsiError("the target closed the connection")
        self.log.append(self.path.runtime_name)

    def close(self) -> None:
        self.sock.close()


def wait_for(check: Callable[[], bool], seconds: float = 5.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.01)
    return check()


def _path(channel: int) -> StoragePath:
    return StoragePath("vmhba64", channel, 0, 1, f"vmk{channel + 2}", "iqn.2026-11.x:y",
                       "198.18.30.100:3260", 1, "naa.6x", 1 << 20, 512)


def _device(policy: Psp, broken: set[str], log: list[str]) -> MultipathDevice:
    def opener(p: StoragePath) -> Session:
        if p.runtime_name in broken:
            raise IscsiError("no answer")
        return cast(Session, FakeSession(p, broken, log))

    return MultipathDevice("naa.6x", [_path(0), _path(1)], NmpDevice(psp=policy, iops=1),
                           opener, io_timeout=0.2, revive_every=0.05)


def test_a_failed_command_is_repeated_on_the_live_path() -> None:
    broken: set[str] = set()
    log: list[str] = []
    with _device("VMW_PSP_MRU", broken, log) as dev:
        dev.write(0, bytes(512))
        broken.add("vmhba64:C0:T0:L1")
        dev.write(0, bytes(512))
        assert dev.read(0, 1) == bytes(512)
        assert log == ["vmhba64:C0:T0:L1", "vmhba64:C1:T0:L1", "vmhba64:C1:T0:L1"]
        assert [p for p, _ in dev.failovers] == ["vmhba64:C0:T0:L1"]
        assert dev.alive() == [False, True]
        assert dev.working() == ["vmhba64:C1:T0:L1"]


def test_a_dead_path_is_revived_and_fixed_returns_to_it() -> None:
    broken = {"vmhba64:C0:T0:L1"}
    log: list[str] = []
    with _device("VMW_PSP_FIXED", broken, log) as dev:
        assert dev.alive() == [False, True]
        dev.write(0, bytes(512))
        broken.clear()
        assert wait_for(lambda: dev.alive() == [True, True])
        dev.write(0, bytes(512))
        assert log == ["vmhba64:C1:T0:L1", "vmhba64:C0:T0:L1"]


def test_all_paths_down_is_an_error_after_the_apd_time(monkeypatch: Any) -> None:
    import vmknet.storage.nmp as nmp

    monkeypatch.setattr(nmp, "ALL_PATHS_DOWN_AFTER", 0.2)
    broken = {"vmhba64:C0:T0:L1", "vmhba64:C1:T0:L1"}
    with _device("VMW_PSP_RR", broken, []) as dev, \
            pytest.raises(nmp.AllPathsDown, match=r"All paths down to naa\.6x"):
        dev.read(0, 1)
