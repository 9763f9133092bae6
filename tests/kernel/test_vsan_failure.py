"""vSAN failures in a real lab (steps 3-4 of docs/vsan.md).

- A replica's host killed during writes: the object goes degraded, writes go on with the
  surviving replica (the pause is measured), every acknowledged block reads back from it
  (the checker), and when the host returns only the blocks it missed are copied (VSAN-2).
- A host that stays away past the repair delay: its replica is rebuilt on another host.
- A vSAN uplink down on one host: that host is partitioned, the health checks say so,
  objects with a replica elsewhere stay available; the uplink back, all is green again.
"""

from __future__ import annotations

import hashlib
import os
import random
import threading
import time
from collections.abc import Iterator
from functools import partial

import pytest
from vsankit import HOSTS, VsanLab, converged, vsan_lab, wait_for

from vmknet.ops import nic
from vmknet.vsan import directory, health, objects, open_object, paths, procs, report
from vmknet.vsan.disk import BLOCK
from vmknet.vsan.objects import node_states

MiB = 1 << 20
REPAIR_DELAY = 8.0
PIECE = 256 << 10


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[VsanLab]:
    with vsan_lab(tmp_path_factory.mktemp("vsanf"), repair_delay=REPAIR_DELAY) as lab:
        yield lab


def _digest(env: VsanLab, host: str, uuid: str, comp: str) -> str:
    with open(paths.component_path(env.lab, host, uuid, comp), "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


class Writer:
    """Writes PIECE-sized random data at random offsets; keeps what each ack covered."""

    def __init__(self, env: VsanLab, host: str, uuid: str, size: int) -> None:
        self.disk = open_object(env.lab, host, uuid)
        self.size, self.rng = size, random.Random(7)
        self.acked: dict[int, bytes] = {}
        self.done: list[float] = []  # monotonic time of each ack
        self.error: BaseException | None = None
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        try:
            while not self.stop.is_set():
                off = self.rng.randrange(self.size // PIECE) * PIECE
                data = os.urandom(PIECE)
                self.disk.write(off, data)
                self.acked[off] = data
                self.done.append(time.monotonic())
        except BaseException as err:  # the test reports it
            self.error = err

    def acks_after(self, t: float, n: int, limit: float = 10.0) -> None:
        wait_for(f"{n} acks", lambda: sum(d > t for d in self.done) >= n or
                 self.error is not None, limit)

    def finish(self) -> None:
        self.stop.set()
        self.thread.join(10)
        self.disk.close()
        assert self.error is None, self.error


def test_host_killed_during_writes_loses_no_acknowledged_write(env: VsanLab) -> None:
    meta = objects.create(env.dc, env.lab, "cl01", "disk-kill", 64 * MiB, 1)
    keep, lost = meta.replicas()
    outsider = next(h for h in HOSTS if h not in {c.host for c in meta.components})
    w = Writer(env, outsider, meta.uuid, meta.size)
    w.thread.start()
    w.acks_after(0, 40)
    killed_at = time.monotonic()
    procs.kill(env.lab, lost.host)
    w.acks_after(killed_at, 40)
    written_after = sum(d > killed_at for d in w.done) * PIECE
    pause = max(b - a for a, b in zip(w.done, w.done[1:], strict=False) if b > killed_at)
    assert pause <= 2.0, f"I/O paused {pause:.2f} s on host loss"
    w.stop.set()
    w.thread.join(10)
    assert w.error is None, w.error
    now = directory.load(env.lab, meta.uuid)
    assert now.comp(lost.id).state == "absent" and now.health() == "reduced-availability"
    rows = {o["uuid"]: o for o in report.object_rows(env.dc, env.lab)}
    assert rows[meta.uuid]["health"] == "reduced-availability"
    left = sum(r["bytesLeft"] for r in report.resync_rows(env.lab) if r["uuid"] == meta.uuid)
    assert 0 < left <= written_after + BLOCK * 64
    # The checker: every acknowledged block, from the surviving replica's own file.
    with open(paths.component_path(env.lab, keep.host, meta.uuid, keep.id), "rb") as f:
        for off, data in w.acked.items():
            f.seek(off)
            assert f.read(PIECE) == data, f"acknowledged write at {off} lost"
    copied_before = node_states(env.lab, (keep.host,))[keep.host]["resync"]["copied"]
    procs.start(env.dc, env.lab, "cl01", [lost.host])
    wait_for("resynced", lambda: directory.load(env.lab, meta.uuid).health() == "healthy", 15)
    done = time.time()
    wait_for("the survivor's record after the resync", lambda: float(
        node_states(env.lab, (keep.host,))[keep.host]["updated"]) > done, 5)
    copied = node_states(env.lab, (keep.host,))[keep.host]["resync"]["copied"] - copied_before
    assert copied == left < meta.size // 2  # only what changed was copied, all of it
    assert _digest(env, keep.host, meta.uuid, keep.id) == \
        _digest(env, lost.host, meta.uuid, lost.id)
    with open_object(env.lab, lost.host, meta.uuid) as disk:  # the returned replica serves
        for off, data in list(w.acked.items())[:20]:
            assert disk.read(off, PIECE) == data
    w.finish()
    objects.delete(env.dc, env.lab, meta)


def test_host_away_past_the_repair_delay_is_rebuilt_elsewhere(env: VsanLab) -> None:
    meta = objects.create(env.dc, env.lab, "cl01", "disk-rebuild", 16 * MiB, 1)
    keep, lost = meta.replicas()
    spare = next(h for h in HOSTS if h not in {c.host for c in meta.components})
    data = os.urandom(4 * MiB)
    with open_object(env.lab, keep.host, meta.uuid) as disk:
        disk.write(MiB, data)
        procs.kill(env.lab, lost.host)
        disk.write(8 * MiB, data)  # degraded: on the survivor only
    try:
        wait_for("rebuilt", lambda: (
            (m := directory.load(env.lab, meta.uuid)).health() == "healthy"
            and lost.host not in {c.host for c in m.replicas()}), REPAIR_DELAY + 15)
        m = directory.load(env.lab, meta.uuid)
        new = next(c for c in m.replicas() if c.host not in (keep.host,))
        assert new.host == spare and new.id not in (keep.id, lost.id)
        assert _digest(env, keep.host, m.uuid, keep.id) == _digest(env, spare, m.uuid, new.id)
    finally:
        procs.start(env.dc, env.lab, "cl01", [lost.host])
    wait_for("the stale replica collected", lambda: not any(
        paths.disk_dir(env.lab, lost.host).glob(f"{meta.uuid}.{lost.id}*")), 20)
    objects.delete(env.dc, env.lab, meta)


def test_vsan_uplink_down_partitions_the_host_and_health_says_so(env: VsanLab) -> None:
    wait_for("converged", lambda: converged(env.lab), 10)
    meta = objects.create(env.dc, env.lab, "cl01", "disk-part", 16 * MiB, 1)
    cut = meta.replicas()[1].host
    client = next(h for h in HOSTS if h != cut)
    data = os.urandom(MiB)
    env.inv.run(partial(nic.set_link, host=cut, name="vmnic2", up=False))
    try:
        wait_for("partitioned", lambda: node_states(env.lab, (cut,))[cut]["partition"] == [cut])
        with open_object(env.lab, client, meta.uuid) as disk:
            t0 = time.monotonic()
            disk.write(0, data)  # the replica on the cut host times out: degraded, goes on
            assert time.monotonic() - t0 <= 2.0
            assert disk.read(0, MiB) == data
        result = health.run(env.dc, env.lab, "cl01")
        checks = {c["name"]: c for c in result["checks"]}
        assert result["overall"] == "red"
        part = checks["vSAN cluster partition"]
        assert part["status"] == "red" and any(f": {cut} (seen by {cut})" in p
                                               for p in part["problems"])
        uni = checks["vSAN: Basic (unicast) connectivity check"]
        assert uni["status"] == "red" and all(cut in p for p in uni["problems"])
        assert len(uni["problems"]) == 2 * (len(HOSTS) - 1)
        assert checks["All hosts have a vSAN vmknic configured"]["status"] == "green"
        assert directory.load(env.lab, meta.uuid).health() == "reduced-availability"
    finally:
        env.inv.run(partial(nic.set_link, host=cut, name="vmnic2", up=True))
    wait_for("converged again", lambda: converged(env.lab), 30)
    wait_for("resynced", lambda: directory.load(env.lab, meta.uuid).health() == "healthy", 15)
    assert health.run(env.dc, env.lab, "cl01")["overall"] == "green"
    objects.delete(env.dc, env.lab, meta)
