"""`vmknet cluster status`: the cluster as its primaries see it (one per partition).

Built from the members' FDM views (`view.py`). A partitioned cluster has a
primary on each side; each side's view is reported, and a host's state is
the one its own side's primary gives (a host no fresh primary view covers is
shown with its own view, or as `unknown` when it has none: its agent is down).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from . import view


def cluster_status(cluster: str, members: list[str],
                   read: Callable[[str], dict[str, Any] | None],
                   now: float | None = None) -> dict[str, Any]:
    now = time.time() if now is None else now
    views = {h: v for h in members if view.fresh(v := read(h), now) and v is not None}
    primaries = sorted(h for h, v in views.items() if v.get("role") == "primary"
                       and not v.get("isolated"))
    hosts: dict[str, Any] = {}
    vms: dict[str, Any] = {}
    for p in primaries:  # each side's primary speaks for the hosts it hears
        pv = views[p]
        for name, row in pv.get("hosts", {}).items():
            side = name in views and views[name].get("primary") == p
            if name not in hosts or side:
                hosts[name] = dict(row) | {"seenBy": p}
        vms |= pv.get("vms", {})
    for name in members:
        own = views.get(name)
        row = hosts.setdefault(name, {"state": "unknown", "links": [], "datastores": {},
                                      "seenBy": None})
        row["role"] = own.get("role") if own else None
        row["primary"] = own.get("primary") if own else None
        if own and own.get("isolated"):
            row["state"] = "isolated"
    return {"cluster": cluster, "primaries": primaries, "partitioned": len(primaries) > 1,
            "hosts": {h: hosts[h] for h in members}, "vms": vms,
            "pending": {k: v for p in primaries for k, v in views[p].get("pending", {}).items()}}
