"""The object directory (CMMDS's role for objects): each object's components and their state.

One JSON file per object (paths.object_path), written atomically under an flock of
its own, read by every node and client of the lab. `gen` grows with every change of
the component set or a component's state: a write carries the generation its sender
saw, and a node refuses one from an older generation (`stale`), so a client whose
view is old re-reads it before anything lands on the wrong set of replicas.

States of a component: `active` (in step, takes reads and writes), `absent` (its host
was lost: writes go on without it and the surviving replica records what it missed),
`resyncing` (copying what it missed, not read from, not written by clients).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
import uuid as uuidlib
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from ..errors import NotFound
from ..supervise.records import read_json, write_json
from . import paths

State = Literal["active", "absent", "resyncing"]


@dataclass
class Component:
    id: str
    host: str
    kind: Literal["replica", "witness"]
    state: State = "active"
    since: float = field(default_factory=time.time)  # when it entered its state


@dataclass
class ObjectMeta:
    uuid: str
    name: str
    size: int
    ftt: int
    cluster: str
    gen: int = 1
    components: list[Component] = field(default_factory=list)
    created: float = field(default_factory=time.time)

    def replicas(self) -> list[Component]:
        return [c for c in self.components if c.kind == "replica"]

    def active(self) -> list[Component]:
        return [c for c in self.replicas() if c.state == "active"]

    def witness(self) -> Component | None:
        return next((c for c in self.components if c.kind == "witness"), None)

    def comp(self, cid: str) -> Component:
        for c in self.components:
            if c.id == cid:
                return c
        raise NotFound(f"Object {self.uuid} has no component {cid}")

    def health(self) -> str:
        """vSAN's object health: healthy, reduced-availability (degraded), inaccessible."""
        live = len(self.active())
        if live == 0:
            return "inaccessible"
        return "healthy" if live == len(self.replicas()) else "reduced-availability"

    def next_id(self) -> str:
        return f"c{max((int(c.id[1:]) for c in self.components), default=-1) + 1}"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ObjectMeta:
        comps = [Component(str(c["id"]), str(c["host"]), c["kind"], c["state"],
                           float(c["since"])) for c in d.get("components", [])]
        return cls(str(d["uuid"]), str(d["name"]), int(d["size"]), int(d["ftt"]),
                   str(d["cluster"]), int(d["gen"]), comps, float(d["created"]))


def new_uuid() -> str:
    return str(uuidlib.uuid4())


def load(lab: str, uuid: str) -> ObjectMeta:
    data = read_json(paths.object_path(lab, uuid))
    if not data:
        raise NotFound(f"No vSAN object {uuid} in lab {lab}", uuid=uuid)
    return ObjectMeta.from_dict(data)


def save(lab: str, meta: ObjectMeta) -> None:
    write_json(paths.object_path(lab, meta.uuid), meta.to_dict(), indent=1)


def all_objects(lab: str) -> list[ObjectMeta]:
    folder = paths.objects_dir(lab)
    out = []
    for p in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        with contextlib.suppress(NotFound, KeyError, ValueError, TypeError):
            out.append(load(lab, p.stem))
    return sorted(out, key=lambda m: (m.name, m.uuid))


@contextlib.contextmanager
def locked(lab: str, uuid: str) -> Iterator[ObjectMeta]:
    """The object for a change: saved with the next generation if the block changed it."""
    lock = paths.objects_dir(lab) / f"{paths.check_uuid(uuid)}.lock"
    lock.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        meta = load(lab, uuid)
        before = meta.to_dict()
        yield meta
        if meta.to_dict() != before:
            meta.gen = before["gen"] + 1
            save(lab, meta)
    finally:
        os.close(fd)


def remove(lab: str, uuid: str) -> None:
    for p in (paths.object_path(lab, uuid), paths.objects_dir(lab) / f"{uuid}.lock"):
        p.unlink(missing_ok=True)


class Cache:
    """Objects as last read, re-read when the file changed (a stat per lookup)."""

    def __init__(self, lab: str) -> None:
        self.lab = lab
        self._seen: dict[str, tuple[tuple[int, int], ObjectMeta]] = {}

    def get(self, uuid: str) -> ObjectMeta:
        st = os.stat(paths.object_path(self.lab, uuid))
        stamp = (st.st_ino, st.st_mtime_ns)
        hit = self._seen.get(uuid)
        if hit is not None and hit[0] == stamp:
            return hit[1]
        meta = load(self.lab, uuid)
        self._seen[uuid] = (stamp, meta)
        return meta
