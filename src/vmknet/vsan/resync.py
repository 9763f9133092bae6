"""The surviving replica's side of a failure: degrade, resync what was missed, rebuild.

Run by the node that holds an active replica of an object (the DOM owner's role):

- another active replica whose host this node has not heard for DEAD_AFTER is
  marked absent (the object is degraded, clients track it from their next write),
  if this node's partition holds a majority of the object's votes: a host cut off
  alone (its vSAN uplink down) never marks the others absent;
- an absent replica whose host is heard again is resynced: only the blocks in
  this replica's bitmap for it are copied (VSAN-2), in runs of up to RUN blocks;
  the last few (FINAL) under the object's lock that writes take, and then it turns
  active, so a steady write load cannot keep it resyncing forever;
- an absent replica whose host stays silent past the repair delay is replaced:
  a new component on a live member without one of the object, all data blocks
  of this replica marked for it, then resynced the same way.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..errors import NotFound, VmknetError
from . import directory, placement, wire
from .config import Route
from .directory import Component, ObjectMeta
from .disk import BLOCK, LocalDisk
from .link import call, dial
from .membership import DEAD_AFTER, Membership
from .server import IoServer

TICK = 0.2  # s
RUN = 64  # blocks per copy request (4 MiB)
GC_AGE = 10.0  # s
FINAL = 64  # blocks (4 MiB) at most copied with the object's writes held


@dataclass
class Progress:
    copied: int = 0  # bytes copied since the node started
    seconds: float = 0.0  # time spent copying
    current: dict[str, Any] = field(default_factory=dict)  # what it copies now


class Resyncer:
    def __init__(self, lab: str, host: str, cluster: str, key: bytes, disk: LocalDisk,
                 server: IoServer, members: Membership, routes: dict[str, Route],
                 member_hosts: list[str], capacity: int, repair_delay: float) -> None:
        self.lab, self.host, self.cluster, self.key = lab, host, cluster, key
        self.disk, self.server, self.members, self.routes = disk, server, members, routes
        self.member_hosts, self.capacity, self.repair_delay = member_hosts, capacity, repair_delay
        self.progress = Progress()
        self._links: dict[str, socket.socket] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.errors: list[str] = []

    def start(self) -> Resyncer:
        self._thread = threading.Thread(target=self._loop, daemon=True,
                                        name=f"vsan-resync-{self.host}")
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5.0)
        for s in self._links.values():
            with contextlib.suppress(OSError):
                s.close()

    def _loop(self) -> None:
        started = time.monotonic()
        while not self._stop.wait(TICK):
            if time.monotonic() - started < 2 * DEAD_AFTER:
                continue  # a node that just started has not heard its peers yet
            for meta in directory.all_objects(self.lab):
                try:
                    self._look(meta)
                except (VmknetError, OSError, ValueError, ConnectionError) as err:
                    self._note(f"{meta.uuid}: {type(err).__name__}: {err}")

    def _note(self, text: str) -> None:
        self.errors = [*self.errors, f"{time.strftime('%H:%M:%S')} {text}"][-10:]

    def _look(self, meta: ObjectMeta) -> None:
        mine = [c for c in meta.active() if c.host == self.host]
        if not mine:
            return
        own, alive = mine[0], self.members.alive() | {self.host}
        for c in meta.replicas():
            if c is own:
                continue
            if c.state == "active" and c.host not in alive:
                if _majority(meta, alive):  # a partition without it changes nothing
                    self._mark_absent(meta, own, c)
            elif c.state != "active" and c.host in alive and (
                    c.state == "resyncing" or self.members.heard_at(c.host) > c.since):
                # heard since it was marked absent: it came back (not its last heartbeats)
                self._resync(meta, own, c)
            elif c.state != "active" and time.time() - c.since > self.repair_delay:
                self._rebuild(meta, own, c, alive)

    def _mark_absent(self, meta: ObjectMeta, own: Component, c: Component) -> None:
        with self.server.locks[meta.uuid], directory.locked(self.lab, meta.uuid) as m:
            mc = m.comp(c.id)
            if mc.state == "active":
                mc.state, mc.since = "absent", time.time()
            self.disk.bitmap(meta.uuid, own.id, c.id)

    # ------------------------------------------------------------ resync
    def _resync(self, meta: ObjectMeta, own: Component, target: Component) -> None:
        if target.state == "absent":
            with directory.locked(self.lab, meta.uuid) as m:
                m.comp(target.id).state = "resyncing"
        bitmap = self.disk.bitmap(meta.uuid, own.id, target.id)
        link = self._link(target.host)
        t0 = time.monotonic()
        try:
            for first, count in bitmap.runs(RUN):
                if self._stop.is_set():
                    return
                with self.server.locks[meta.uuid]:
                    bitmap.clear(first, count)  # a write from now on marks it again
                    off = first * BLOCK
                    data = self.disk.read(meta.uuid, own.id, off, min(count * BLOCK,
                                                                      meta.size - off))
                self.progress.current = {"uuid": meta.uuid, "from": own.id, "to": target.id,
                                         "host": target.host, "left": bitmap.count() * BLOCK}
                try:
                    call(link, {"op": "write", "uuid": meta.uuid, "comp": target.id,
                                "off": off, "resync": True}, data)
                except BaseException:
                    bitmap.mark(off, len(data))  # not copied: still owed
                    raise
                self.progress.copied += len(data)
        except (OSError, ConnectionError, ValueError, wire.VsanError):
            self._drop(target.host)
            raise
        finally:
            self.progress.seconds += time.monotonic() - t0
            self.progress.current = {}
        with self.server.locks[meta.uuid]:
            # The last blocks go with writes held (ms): under a steady write load the
            # bitmap never empties between two rounds otherwise.
            if bitmap.count() > FINAL:
                return  # written to meanwhile: the next round copies those blocks
            for first, count in bitmap.runs(RUN):
                off = first * BLOCK
                data = self.disk.read(meta.uuid, own.id, off, min(count * BLOCK,
                                                                  meta.size - off))
                call(link, {"op": "write", "uuid": meta.uuid, "comp": target.id,
                            "off": off, "resync": True}, data)
                bitmap.clear(first, count)
                self.progress.copied += len(data)
            with directory.locked(self.lab, meta.uuid) as m:
                mc = m.comp(target.id)
                mc.state, mc.since = "active", time.time()
            self.disk.drop_bitmap(meta.uuid, own.id, target.id)

    # ------------------------------------------------------------ rebuild
    def _rebuild(self, meta: ObjectMeta, own: Component, lost: Component,
                 alive: set[str]) -> None:
        used: dict[str, int] = {}
        for m in directory.all_objects(self.lab):
            for c in m.replicas():
                used[c.host] = used.get(c.host, 0) + m.size
        free = {h: self.capacity - used.get(h, 0) for h in self.member_hosts}
        holding = {c.host for c in meta.components}
        new = placement.rebuild_host(meta.size, self.member_hosts, free, alive, holding)
        if new is None:
            self._note(f"{meta.uuid}: no live member can take {lost.id}'s place yet")
            return
        with self.server.locks[meta.uuid], directory.locked(self.lab, meta.uuid) as m:
            if m.comp(lost.id).state == "active":
                return
            cid = m.next_id()
            call(self._link(new), {"op": "create", "uuid": m.uuid, "comp": cid,
                                   "size": m.size, "kind": "replica"})
            m.components = [c for c in m.components if c.id != lost.id]
            m.components.append(Component(cid, new, "replica", "resyncing"))
            # A new replica has nothing: every block that holds data is owed to it.
            self.disk.bitmap(m.uuid, own.id, cid).mark_all(self.disk.data_blocks(m.uuid, own.id))
            self.disk.drop_bitmap(m.uuid, own.id, lost.id)

    # ------------------------------------------------------------ links
    def _link(self, host: str) -> socket.socket:
        sock = self._links.get(host)
        if sock is None:
            sock = dial(self.lab, self.host, self.routes[host], self.key, self.cluster, 5.0)
            self._links[host] = sock
        return sock

    def _drop(self, host: str) -> None:
        sock = self._links.pop(host, None)
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.close()

    def left(self) -> int:
        """Bytes this node still owes to absent or resyncing replicas."""
        total = 0
        for uuid, comp, other in self.disk.bitmaps():
            with contextlib.suppress(OSError, NotFound):
                total += self.disk.bitmap(uuid, comp, other).count() * BLOCK
        return total


def _majority(meta: ObjectMeta, alive: set[str]) -> bool:
    """The object's components on hosts of this partition are more than half its votes
    (VSAN-4)."""
    votes = sum(1 for c in meta.components if c.host in alive
                and (c.kind == "witness" or c.state == "active"))
    return 2 * votes > len(meta.components)


def gc(disk: LocalDisk, keep: Callable[[str, str], bool]) -> list[str]:
    """Delete this host's components the directory no longer names (a rebuilt one's old
    place, a deleted object): a returning host holds nothing stale. One younger than
    GC_AGE is kept: it may be a new one the directory does not list yet."""
    gone = []
    for uuid, comp in disk.components():
        if not keep(uuid, comp) and disk.age(uuid, comp) > GC_AGE:
            disk.delete(uuid, comp)
            gone.append(f"{uuid}.{comp}")
    return gone
