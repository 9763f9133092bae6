"""Datastore heartbeating: `.vSphere-HA/<cluster>/<host>-hb` on shared datastores.

Each host writes its file once a second on its heartbeat datastores
(`das.heartbeatdsperhost`, default 2); the primary reads a peer's files when
the peer's network heartbeats stop, and the file moving (its sequence number
changed) says the host lives. The file also says whether the host declared
itself isolated and which VMs it powered off for it, so the primary restarts
exactly those (vSphere keeps that in the host's poweron file).

`Store` is the seam: anything that writes and reads a file on a datastore.
`DirStore` is a folder standing for the datastore (the lab's run directory
on this machine, shared by every agent); `nfs_store` (nfsc.py) goes over
the host's storage adapter with vmknet's NFS client.
"""

from __future__ import annotations

import contextlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from ..paths import inside

FOLDER = ".vSphere-HA"
MAX_FILE = 16384


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
