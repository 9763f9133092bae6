"""`inventory.run` and `inventory.apply` on the controller's local door: its write path.

The CLI of a lab whose controller runs sends its changes here
(`controller/writes.py`); the controller makes them with its own facade, the
same one the REST API uses: the rules, the store, and the kernel through the
rollout to the hosts' agents. Every argument is checked before anything runs:
an operation must be one of `ops.codec`'s and its arguments of their types; a
document passes the same bounded parser as a file (`state.loads`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..errors import ConcurrentModification, InvalidArgument
from ..inventory import Inventory, Plan
from ..mgmt import wire
from ..ops import codec
from ..state import loads


def handlers(open_inventory: Callable[[], Inventory]) -> dict[str, wire.Handler]:
    def run(params: dict[str, Any]) -> dict[str, Any]:
        payload = params.get("operation")
        if not isinstance(payload, dict):
            raise InvalidArgument("inventory.run needs an operation object")
        operation = codec.decode(payload)
        inv = open_inventory()
        events = inv.run(operation)
        return {"events": [{"rule": e.rule, "path": e.path, "message": e.message}
                           for e in events],
                "version": inv.store.read()[0]}

    def apply(params: dict[str, Any]) -> dict[str, Any]:
        document, version = params.get("document"), params.get("version")
        if not isinstance(document, str):  # its size: the frame's limit (mgmt/wire.py)
            raise InvalidArgument("inventory.apply needs a document (text)")
        if not isinstance(version, int) or isinstance(version, bool) or version < 0:
            raise InvalidArgument("inventory.apply needs the plan's version (an integer >= 0)")
        spread = params.get("maxUnavailable")
        if spread is not None and not isinstance(spread, str):
            raise InvalidArgument("maxUnavailable is 'N' or 'P%'")
        desired = loads(document, "<inventory.apply>")
        inv = open_inventory()
        fresh = inv.plan(desired)
        if fresh.version != version:
            raise ConcurrentModification(
                f"The inventory changed since the plan was made (version {version}, now "
                f"{fresh.version}): plan again", expected=version, actual=fresh.version)
        done = inv.apply(Plan(version, fresh.changes, desired), spread)
        rollout = ({"batches": inv.rollout.batches, "hostSeconds": inv.rollout.host_seconds}
                   if inv.rollout is not None else None)
        return {"version": inv.store.read()[0], "changes": len(done.changes),
                "rollout": rollout}

    return {"inventory.run": run, "inventory.apply": apply}
