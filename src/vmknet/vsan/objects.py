"""Objects of the vsanDatastore: create (placement, components on their hosts), delete, list.

`create` asks the nodes that are up (their records, nodes/<host>.json) where there is
room, places the components (placement.py) and creates each on its host over the
vSAN network from `via` (a member that is up), then writes the object to the
directory: a component is created before the directory names it.
"""

from __future__ import annotations

import contextlib
import time
from typing import Any

from ..errors import InvalidArgument, NotFound
from ..model import Datacenter
from ..processes import alive
from ..supervise.records import read_json
from . import config, directory, placement, wire
from .directory import Component, ObjectMeta
from .link import call, dial

FRESH = 2.0  # s: a node record older than this is a node that is gone


def node_states(lab: str, hosts: list[str] | tuple[str, ...]) -> dict[str, dict[str, Any]]:
    """host -> its node's last record, for the nodes that are up (pid alive, record fresh)."""
    from . import paths

    out = {}
    for h in hosts:
        rec = read_json(paths.node_path(lab, h))
        pid = rec.get("pid")
        if (isinstance(pid, int) and alive(pid)
                and time.time() - float(rec.get("updated", 0)) <= FRESH):
            out[h] = rec
    return out


def used(lab: str) -> dict[str, int]:
    """Bytes placed on each host (the replicas' sizes)."""
    out: dict[str, int] = {}
    for m in directory.all_objects(lab):
        for c in m.replicas():
            out[c.host] = out.get(c.host, 0) + m.size
    return out


def live_hosts(lab: str, cv: config.ClusterView) -> set[str]:
    """The largest partition the nodes that are up agree on."""
    states = node_states(lab, cv.nodes)
    parts = [tuple(s.get("partition", [])) for s in states.values()]
    best = max(parts, key=lambda p: (len(p), p), default=())
    return set(best) & set(states)


def create(dc: Datacenter, lab: str, cluster: str, name: str, size: int, ftt: int) -> ObjectMeta:
    cv = config.view(dc, cluster)
    if any(m.name == name for m in directory.all_objects(lab)):
        raise InvalidArgument(f"A vSAN object named {name} exists already",
                              code="AlreadyExists")
    alive_hosts = live_hosts(lab, cv)
    taken = used(lab)
    free = {h: cv.capacity - taken.get(h, 0) for h in cv.members}
    placed = placement.place(ftt, size, cv.members, free, alive_hosts, cv.witness_host)
    meta = ObjectMeta(directory.new_uuid(), name, size, ftt, cluster)
    meta.components = [Component(f"c{i}", h, "replica") for i, h in enumerate(placed.replicas)]
    if placed.witness is not None:
        meta.components.append(Component(f"c{len(placed.replicas)}", placed.witness, "witness"))
    via = placed.replicas[0]
    routes = config.routes(dc, cv, via)
    key = config.load_key(lab, cluster)
    for c in meta.components:
        sock = dial(lab, via, routes[c.host], key, cluster, 5.0)
        with contextlib.closing(sock):
            call(sock, {"op": "create", "uuid": meta.uuid, "comp": c.id, "size": size,
                        "kind": c.kind})
    directory.save(lab, meta)
    return meta


def find(lab: str, name_or_uuid: str) -> ObjectMeta:
    for m in directory.all_objects(lab):
        if name_or_uuid in (m.name, m.uuid):
            return m
    raise NotFound(f"No vSAN object {name_or_uuid!r} in lab {lab}")


def delete(dc: Datacenter, lab: str, meta: ObjectMeta) -> None:
    """The object leaves the directory; each node deletes its components (now, if it is
    reachable, else when it next collects what the directory no longer names)."""
    directory.remove(lab, meta.uuid)
    cv = config.view(dc, meta.cluster)
    key = config.load_key(lab, meta.cluster)
    up = node_states(lab, cv.nodes)
    for c in meta.components:
        if c.host not in up:
            continue
        with contextlib.suppress(OSError, ConnectionError, ValueError, wire.VsanError):
            route = config.routes(dc, cv, c.host)[c.host]
            sock = dial(lab, c.host, route, key, meta.cluster, 5.0)
            with contextlib.closing(sock):
                call(sock, {"op": "delete", "uuid": meta.uuid, "comp": c.id})
