"""What each kind of task runs: the engines' orchestrators, in the controller's process.

Kept apart from `tasks` because it imports the engines (vMotion, provisioning),
which sit above the management plane's core; `python -m vmknet.controller`
hands these to its `Tasks`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from ..model import Datacenter
from ..provision import cold
from .tasks import CloneParams, MigrateParams, Runner, VmotionParams

Progress = Callable[[dict[str, Any]], None]
COPY_EVERY = 0.25  # s between two copy progress events (a copy reports every block)


def _copies(progress: Progress) -> Callable[[int, int, str], None]:
    last = [0.0]

    def update(done: int, total: int, name: str) -> None:
        now = time.monotonic()
        if done >= total or now - last[0] >= COPY_EVERY:
            last[0] = now
            progress({"event": "copy", "done": done, "total": total, "file": name})

    return update


def vmotion(dc: Datacenter, lab: str, p: Any, progress: Progress
            ) -> tuple[bool, dict[str, Any], str]:
    assert isinstance(p, VmotionParams)
    options: dict[str, Any] = {"max_downtime": p.maxDowntimeMs / 1000,
                               "encryption": p.encryption, "timeout": p.timeout,
                               "rate_limit": p.rateLimit}
    if p.datastore is not None:
        from ..provision import live

        moved = live.vmotion(dc, lab, p.vm, p.target, datastore=p.datastore,
                             progress=_copies(progress), **options)
        return moved.completed, moved.to_dict(), moved.summary()
    from ..vmotion import migrate  # numpy and cryptography: loaded on the first vMotion

    report = migrate(dc, lab, p.vm, p.target, progress=progress, **options)
    return (report.completed, report.to_dict(),
            f"vMotion {report.vm} {report.source} -> {report.target}: {report.result} "
            f"({report.reason})")


def migrate(dc: Datacenter, lab: str, p: Any, progress: Progress
            ) -> tuple[bool, dict[str, Any], str]:
    assert isinstance(p, MigrateParams)
    moved = cold.migrate(dc, lab, p.vm, p.target, datastore=p.datastore,
                         progress=_copies(progress), bandwidth_limit=p.limit)
    return moved.completed, moved.to_dict(), moved.summary()


def clone(dc: Datacenter, lab: str, p: Any, progress: Progress
          ) -> tuple[bool, dict[str, Any], str]:
    assert isinstance(p, CloneParams)
    moved = cold.clone(dc, lab, p.vm, p.target, p.name, datastore=p.datastore,
                       progress=_copies(progress), bandwidth_limit=p.limit)
    return moved.completed, moved.to_dict(), moved.summary()


RUNNERS: dict[str, Runner] = {"vmotion": vmotion, "migrate": migrate, "clone": clone}
