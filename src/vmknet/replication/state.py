"""Where replication keeps its state: /run/vmknet/labs/<lab>/replication/ (gone with the lab).

source-<vm>.json   the source agent's status (last sync, RPO, bytes, leg 1)
pending-<vm>.json  the source's pending changed blocks (CBT), kept across restarts
server-<host>.json each replica's last applied generation on that server (leg 2)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..lab.registry import run_dir
from ..resolve import Flow
from ..supervise.records import write_json


def state_dir(lab: str) -> Path:
    return run_dir() / lab / "replication"


def save_json(path: Path, data: dict[str, Any]) -> None:
    write_json(path, data, indent=1)  # a reader sees the old state or the new, never half


def flow_info(flow: Flow) -> dict[str, str]:
    return {"source": f"{flow.source.host}/{flow.source.vmknic}",
            "source_stack": flow.source.netstack,
            "target": f"{flow.target.host}/{flow.target.vmknic}",
            "address": f"{flow.source.address.ip} -> {flow.target.address.ip}",
            "reason": flow.reason}
