"""Datastore heartbeating: `.vSphere-HA/<cluster>/<host>-hb` on shared datastores.

Each host writes its file once a second on its heartbeat datastores
(`das.heartbeatdsperhost`, default 2); the primary reads a peer's files when
the peer's network heartbeats stop, and the file moving (its sequence number
changed) says the host lives. The file also says whether the host declared
itself isolated and which VMs it powered off for it, so the primary restarts
exactly those (vSphere keeps that in the host's poweron file).

`Store` is the seam: anything that writes and reads a file on a datastore.
`NfsStore` is the real one: vmknet's NFS client (storage/nfsc) from the
host's default stack, bound to the adapter whose subnet holds the server (as
ESXi routes NFS), so the heartbeats never go over management. `DirStore` is
a folder standing for a datastore, for unit tests.
"""

from __future__ import annotations

import contextlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from ..dataplane import naming
from ..errors import NotFound, VmknetError
from ..model.services import DEFAULT_STACK
from ..paths import inside
from ..storage.nfsc import Bind, NfsMount, mount
from .config import Datastore

FOLDER = ".vSphere-HA"
MAX_FILE = 16384
NFS_TIMEOUT = 2.0  # s per NFS call: a heartbeat is due every second


class Store(Protocol):
    name: str

    def write(self, path: str, data: bytes) -> None: ...

    def read(self, path: str) -> bytes | None: ...


def hb_path(cluster: str, host: str) -> str:
    return f"{FOLDER}/{cluster}/{host}-hb"


class DirStore:
    """A datastore as a folder: `root` holds what the datastore's root would."""

    def __init__(self, name: str, root: Path) -> None:
        self.name, self.root = name, root

    def write(self, path: str, data: bytes) -> None:
        target = inside(self.root, *path.split("/"))
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.{os.getpid()}")
        tmp.write_bytes(data)
        tmp.replace(target)  # a reader sees the old file or the new one, never half

    def read(self, path: str) -> bytes | None:
        try:
            with inside(self.root, *path.split("/")).open("rb") as f:
                return f.read(MAX_FILE + 1)[:MAX_FILE + 1]
        except OSError:
            return None


class NfsStore:
    """A datastore over NFS, mounted once and again after an error."""

    def __init__(self, lab: str, host: str, ds: Datastore) -> None:
        self.name, self.ds = ds.name, ds
        self.bind = Bind(naming.stack_ns(lab, host, DEFAULT_STACK),
                         naming.adapter_ifname(ds.vmk) if ds.vmk else None, ds.source)
        self._mount: NfsMount | None = None
        self._made: set[str] = set()  # folders known to exist

    def _m(self) -> NfsMount:
        if self._mount is None:
            self._mount = mount(self.ds.server, self.ds.share, self.ds.version, self.bind,
                                timeout=NFS_TIMEOUT)
        return self._mount

    def _dropped(self) -> None:
        if self._mount is not None:
            with contextlib.suppress(OSError, VmknetError):
                self._mount.close()
        self._mount, self._made = None, set()

    def write(self, path: str, data: bytes) -> None:
        try:
            m = self._m()
            folder = path.rpartition("/")[0]
            if folder and folder not in self._made:
                parts = folder.split("/")
                for i in range(1, len(parts) + 1):
                    m.mkdir("/".join(parts[:i]), exist_ok=True)
                self._made.add(folder)
            m.write_file(path, data)
        except (OSError, VmknetError):
            self._dropped()
            raise

    def read(self, path: str) -> bytes | None:
        try:
            return self._m().read_file(path, MAX_FILE + 1)
        except NotFound:
            return None
        except (OSError, VmknetError):
            self._dropped()
            raise

    def close(self) -> None:
        self._dropped()


def beat(host: str, seq: int, isolated: bool, vms: list[dict[str, Any]],
         powered_off: list[dict[str, Any]]) -> bytes:
    return json.dumps({"host": host, "seq": seq, "isolated": isolated, "vms": vms,
                       "poweredOff": powered_off}).encode()


@dataclass
class Seen:
    """One peer's file on one datastore, as the reader last saw it."""

    seq: int | None = None
    moved: float | None = None
    moves: tuple[float, ...] = ()  # the last few times it moved
    isolated: bool = False
    vms: list[dict[str, Any]] = field(default_factory=list)
    powered_off: list[dict[str, Any]] = field(default_factory=list)


def look(store: Store, cluster: str, host: str, seen: Seen, now: float) -> Seen:
    """Read `host`'s file; `moved` is when its sequence number last changed."""
    raw = store.read(hb_path(cluster, host))
    if raw is None or len(raw) > MAX_FILE:
        return seen
    with contextlib.suppress(ValueError, TypeError, KeyError):
        data = json.loads(raw)
        if data["host"] != host or not isinstance(data["seq"], int):
            return seen
        vms = [v for v in data.get("vms", []) if isinstance(v, dict)][:64]
        off = [v for v in data.get("poweredOff", []) if isinstance(v, dict)][:64]
        changed = seen.seq is not None and data["seq"] != seen.seq
        moved = now if changed else seen.moved
        moves = (*seen.moves, now)[-4:] if changed else seen.moves
        return Seen(data["seq"], moved, moves, bool(data["isolated"]), vms, off)
    return seen
