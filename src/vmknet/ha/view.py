"""Each FDM's view of its cluster, for `vmknet cluster status`: one file per host.

`/run/vmknet/labs/<lab>/ha/<host>.json`, rewritten every second by that
host's FDM (beside the lab's VM registry, gone with the lab). The CLI reads
the views of a cluster's members; a view older than STALE seconds is from an
FDM that is not running (its host died, or its agent did).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from ..lab.registry import run_dir
from ..paths import inside
from ..supervise.records import write_json

STALE = 3.0  # s


def folder(lab: str) -> Path:
    return run_dir() / lab / "ha"


def write(lab: str, host: str, data: dict[str, Any]) -> None:
    write_json(inside(folder(lab), f"{host}.json"), data)


def read(lab: str, host: str) -> dict[str, Any] | None:
    try:
        data = json.loads(inside(folder(lab), f"{host}.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def fresh(data: dict[str, Any] | None, now: float | None = None) -> bool:
    if data is None:
        return False
    at = data.get("at")
    return isinstance(at, int | float) and (now or time.time()) - at <= STALE
