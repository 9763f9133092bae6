"""A vSAN object as a VM's disk: read, write, flush, close from any host of the cluster.

    disk = open_object("h24", "esx03", uuid)   # esx03 may hold no replica at all
    disk.write(0, data); disk.read(0, 4096); disk.flush(); disk.close()

A write goes to every active replica at once and returns when all of them hold it
durably (VSAN-2). A replica that fails (its connection breaks or stays silent for
IO_TIMEOUT) is marked absent, if the survivors and the witness are still a majority
of the object's votes, and the write goes on with the survivors, which from then on
record the blocks it misses; without a majority the object is inaccessible
(VsanError). A read comes from one active replica: the local one if this host
holds one (the file itself), else over the vSAN network.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from ..inventory import Inventory
from ..lab.registry import store_of
from . import config, directory, paths, wire
from .config import Route
from .directory import Component, ObjectMeta
from .link import IO_TIMEOUT, call, dial

CHUNK = 4 << 20  # one request's data: moves within IO_TIMEOUT down to ~40 Mbit/s links
PIECE = 1 << 20  # a write request to one replica; a CHUNK goes as several at once
RETRIES = 50  # generations one write may see change under it


class VsanObject:
    """The interface other parts use (vm/disk.py): size, read, write, flush, close."""

    def __init__(self, lab: str, host: str, uuid: str, routes: dict[str, Route], key: bytes,
                 timeout: float = IO_TIMEOUT) -> None:
        self.lab, self.host, self.uuid = lab, host, paths.check_uuid(uuid)
        self.routes, self.key, self.timeout = routes, key, timeout
        self._cache = directory.Cache(lab)
        meta = self._cache.get(uuid)
        self.cluster = meta.cluster
        self.size: int = meta.size
        self._links: dict[str, socket.socket] = {}
        self._local: dict[str, int] = {}
        self._pool = ThreadPoolExecutor(2, thread_name_prefix=f"vsan-{host}")
        self._io = threading.Lock()  # one request at a time on each link: I/O is serialised
        self.degraded: list[tuple[float, str]] = []  # (time.time(), component) marked absent

    # ------------------------------------------------------------ connections
    def _link(self, host: str) -> socket.socket:
        sock = self._links.get(host)
        if sock is None:
            route = self.routes.get(host)
            if route is None:
                raise wire.VsanError(f"{self.host} has no route to vSAN node {host}")
            sock = dial(self.lab, self.host, route, self.key, self.cluster, self.timeout)
            self._links[host] = sock
        return sock

    def _drop(self, host: str) -> None:
        sock = self._links.pop(host, None)
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.close()

    def _bounds(self, offset: int, length: int) -> None:
        if offset < 0 or length < 0 or offset + length > self.size:
            raise wire.VsanError(f"I/O at {offset}+{length} outside the object "
                                 f"(size {self.size})", code="InvalidArgument")

    # ------------------------------------------------------------ write
    def write(self, offset: int, data: bytes) -> None:
        self._bounds(offset, len(data))
        view = memoryview(data)
        with self._io:
            for at in range(0, len(data), CHUNK):
                self._write(offset + at, view[at:at + CHUNK])

    def _write(self, offset: int, data: memoryview) -> None:
        for _ in range(RETRIES):
            meta = self._cache.get(self.uuid)
            active = meta.active()
            if not active:
                raise wire.VsanError(f"vSAN object {self.uuid} is inaccessible (no active "
                                     "replica)", code="VsanInaccessible")
            track = [c.id for c in meta.replicas() if c.state != "active"]
            if len(active) == 1:
                results = {active[0].id: self._write_one(active[0], meta.gen, offset, data, track)}
            else:
                futures = {c.id: self._pool.submit(self._write_one, c, meta.gen, offset, data,
                                                   track) for c in active}
                results = {cid: f.result() for cid, f in futures.items()}
            failed = [c for c in active if isinstance(results[c.id], Exception)]
            if failed:
                self._degrade(meta, failed)
                continue
            if all(r == "ok" for r in results.values()):
                return
            # stale: the object changed (a replica lost or back); read it again
        raise wire.VsanError(f"vSAN object {self.uuid} kept changing during a write")

    def _write_one(self, c: Component, gen: int, offset: int, data: memoryview,
                   track: list[str]) -> str | Exception:
        try:
            sock = self._link(c.host)
            head = {"op": "write", "uuid": self.uuid, "comp": c.id, "gen": gen, "track": track}
            # Pipelined: every piece is sent before the first ack is awaited, so the link
            # is not idle for a round trip per piece (the node answers them in order).
            pieces = range(0, len(data), PIECE)
            for at in pieces:
                wire.send(sock, {**head, "off": offset + at}, data[at:at + PIECE])
            replies = [wire.recv(sock)[0] for _ in pieces]
            for reply in replies:
                if reply.get("op") == "error":
                    raise wire.VsanError(f"vSAN node {c.host}: {reply.get('message')}")
            return "ok" if all(r.get("op") == "ok" for r in replies) else "stale"
        except (OSError, ConnectionError, ValueError, wire.VsanError) as err:
            self._drop(c.host)
            return err

    def _degrade(self, meta: ObjectMeta, failed: list[Component]) -> None:
        """Mark `failed` absent if the rest still hold a majority of the votes (VSAN-4), else
        the object is inaccessible here."""
        survivors = [c for c in meta.active() if c not in failed]
        votes = len(survivors) + (1 if self._witness_votes(meta) else 0)
        total = len(meta.replicas()) + (1 if meta.witness() else 0)
        if not survivors or 2 * votes <= total:
            raise wire.VsanError(
                f"vSAN object {self.uuid} is inaccessible: lost "
                f"{', '.join(f'{c.id} on {c.host}' for c in failed)} and no majority of its "
                f"votes is left ({votes} of {total})", code="VsanInaccessible")
        with directory.locked(self.lab, self.uuid) as m:
            for c in failed:
                mc = m.comp(c.id)
                if mc.state == "active":
                    mc.state, mc.since = "absent", time.time()
                    self.degraded.append((mc.since, c.id))

    def _witness_votes(self, meta: ObjectMeta) -> bool:
        w = meta.witness()
        if w is None:
            return False
        try:
            reply, _ = call(self._link(w.host), {"op": "vote", "uuid": self.uuid, "comp": w.id})
            return reply.get("op") == "ok"
        except (OSError, ConnectionError, ValueError, wire.VsanError):
            self._drop(w.host)
            return False

    # ------------------------------------------------------------ read
    def read(self, offset: int, length: int) -> bytes:
        self._bounds(offset, length)
        with self._io:
            return b"".join(self._read(offset + at, min(CHUNK, length - at))
                            for at in range(0, length, CHUNK))

    def _read(self, offset: int, length: int) -> bytes:
        for _ in range(RETRIES):
            meta = self._cache.get(self.uuid)
            order = sorted(meta.active(), key=lambda c: c.host != self.host)
            if not order:
                raise wire.VsanError(f"vSAN object {self.uuid} is inaccessible",
                                     code="VsanInaccessible")
            failed = []
            for c in order:
                if c.host == self.host:
                    return os.pread(self._local_fd(c.id), length, offset)
                try:
                    return self._read_remote(c, offset, length)
                except (OSError, ConnectionError, ValueError, wire.VsanError):
                    self._drop(c.host)
                    failed.append(c)
            if failed:  # every active replica failed this read: as a write would, degrade
                self._degrade(meta, failed)
        raise wire.VsanError(f"vSAN object {self.uuid}: no replica answered a read")

    def _read_remote(self, c: Component, offset: int, length: int) -> bytes:
        """Pipelined as writes are: every piece asked for before the first is awaited, so
        the node reads the next piece while the last one is on the wire."""
        sock = self._link(c.host)
        pieces = range(0, length, PIECE)
        for at in pieces:
            wire.send(sock, {"op": "read", "uuid": self.uuid, "comp": c.id,
                             "off": offset + at, "len": min(PIECE, length - at)})
        out = []
        for _ in pieces:
            reply, data = wire.recv(sock)
            if reply.get("op") == "error":
                raise wire.VsanError(f"vSAN node {c.host}: {reply.get('message')}")
            out.append(data)
        return b"".join(out)

    def _local_fd(self, comp: str) -> int:
        fd = self._local.get(comp)
        if fd is None:
            fd = os.open(paths.component_path(self.lab, self.host, self.uuid, comp), os.O_RDONLY)
            self._local[comp] = fd
        return fd

    # ------------------------------------------------------------ the rest
    def flush(self) -> None:
        """Every acknowledged write is durable on its replicas already: nothing is buffered."""
        if not self._cache.get(self.uuid).active():
            raise wire.VsanError(f"vSAN object {self.uuid} is inaccessible",
                                 code="VsanInaccessible")

    def close(self) -> None:
        for host in list(self._links):
            self._drop(host)
        for fd in self._local.values():
            with contextlib.suppress(OSError):
                os.close(fd)
        self._local.clear()
        self._pool.shutdown(wait=False)

    def __enter__(self) -> VsanObject:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_object(lab: str, host: str, uuid: str, *, store: Path | str | None = None,
                timeout: float = IO_TIMEOUT) -> VsanObject:
    """The object `uuid` of `lab` as a disk, opened by a process on `host` (any cluster node)."""
    meta = directory.load(lab, uuid)
    where = store if store is not None else store_of(lab)
    if where is None:
        raise wire.VsanError(f"No store is bound to lab {lab}", code="NotFound")
    dc = Inventory.open(where).read()
    cv = config.view(dc, meta.cluster)
    return VsanObject(lab, host, uuid, config.routes(dc, cv, host),
                      config.load_key(lab, meta.cluster), timeout)
