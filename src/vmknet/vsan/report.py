"""What `vmknet vsan object list | resync status | status` show, read from the lab's files.

A component's state is the directory's, with one correction from the nodes' records:
a component the directory calls active on a host whose node is down or cut off from
the cluster's largest partition shows `absent (host down)` until a node marks it.
Bytes left to resync are the dirty bitmaps' marked blocks (disk.py), so the number is
exactly what will be copied.
"""

from __future__ import annotations

import time
from typing import Any

from ..model import Datacenter
from . import config, directory, paths
from .disk import BLOCK
from .objects import live_hosts, node_states, used


def _left(lab: str, host: str, uuid: str, comp: str) -> dict[str, int]:
    """other component -> bytes this replica still owes it."""
    out = {}
    base = paths.component_path(lab, host, uuid, comp)
    for p in base.parent.glob(f"{base.name}.dirty.*"):
        try:
            out[p.name.rsplit(".", 1)[1]] = p.read_bytes().count(1) * BLOCK
        except OSError:
            continue
    return out


def object_rows(dc: Datacenter, lab: str) -> list[dict[str, Any]]:
    out = []
    live: dict[str, set[str]] = {}
    for m in directory.all_objects(lab):
        if m.cluster not in live:
            live[m.cluster] = live_hosts(lab, config.view(dc, m.cluster))
        comps = []
        for c in m.components:
            state: str = c.state
            if state == "active" and c.host not in live[m.cluster]:
                state = "absent (host down)"
            comps.append({"id": c.id, "host": c.host, "type": c.kind, "state": state,
                          "since": c.since})
        actives = sum(1 for c in comps if c["type"] == "replica" and c["state"] == "active")
        replicas = sum(1 for c in comps if c["type"] == "replica")
        health = "healthy" if actives == replicas else \
            "inaccessible" if actives == 0 else "reduced-availability"
        out.append({"name": m.name, "uuid": m.uuid, "size": m.size, "ftt": m.ftt,
                    "cluster": m.cluster, "gen": m.gen, "health": health, "components": comps})
    return out


def resync_rows(lab: str) -> list[dict[str, Any]]:
    """One row per replica owed data: object, from (host/comp), to (host/comp), bytes left."""
    out = []
    for m in directory.all_objects(lab):
        for c in m.active():
            for other, left in sorted(_left(lab, c.host, m.uuid, c.id).items()):
                target = next((x for x in m.components if x.id == other), None)
                out.append({"name": m.name, "uuid": m.uuid, "from": f"{c.host}/{c.id}",
                            "to": f"{target.host}/{other}" if target else other,
                            "state": target.state if target else "gone",
                            "bytesLeft": left})
    return out


def node_rows(dc: Datacenter, lab: str) -> list[dict[str, Any]]:
    out = []
    placed = used(lab)
    for cluster in config.vsan_clusters(dc):
        cv = config.view(dc, cluster)
        states = node_states(lab, cv.nodes)
        for h in cv.nodes:
            rec = states.get(h, {})
            out.append({"cluster": cluster, "host": h, "up": bool(rec),
                        "role": rec.get("role", "-"), "partition": rec.get("partition", []),
                        "pid": rec.get("pid"), "witness": h == cv.witness_host,
                        "capacity": 0 if h == cv.witness_host else cv.capacity,
                        "used": placed.get(h, 0),
                        "resyncCopied": rec.get("resync", {}).get("copied", 0),
                        "age": round(time.time() - float(rec["updated"]), 2) if rec else None})
    return out
