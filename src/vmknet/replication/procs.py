"""Replication daemon processes of a lab: their records, and how they are found and stopped.

One process per replicated VM (`python -m vmknet.replication.daemon --lab=L --vm=VM ...`)
holds the server, the target's ReplicaNfc endpoint and the source agent. It records
itself in /run/vmknet/labs/<lab>/replication/daemon-<vm>.json and logs to daemon-<vm>.log
beside it; `lab down` finds it by command line (`MARKER` and `--lab=<lab>`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..paths import inside
from ..processes import alive, lab_pids, terminate
from ..supervise.records import REPLICATION, read_json
from .state import state_dir

MARKER = REPLICATION


def record_path(lab: str, vm: str) -> Path:
    return inside(state_dir(lab), f"daemon-{vm}.json")  # SEC-5


def log_path(lab: str, vm: str) -> Path:
    return inside(state_dir(lab), f"daemon-{vm}.log")


def records(lab: str) -> dict[str, dict[str, Any]]:
    """Every daemon record of `lab` by VM (running or not: see `running`)."""
    folder = state_dir(lab)
    paths = sorted(folder.glob("daemon-*.json")) if folder.is_dir() else []
    return {p.stem.removeprefix("daemon-"): read_json(p) for p in paths}


def running(rec: dict[str, Any]) -> bool:
    pid = rec.get("pid")
    return isinstance(pid, int) and alive(pid) and pid in lab_pids(MARKER, str(rec.get("lab")))


def vm_pids(lab: str, vm: str) -> list[int]:
    """The daemon processes of `vm` (by command line: `--vm=<vm>`)."""
    out = []
    for pid in lab_pids(MARKER, lab):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                argv = f.read().split(b"\0")
        except OSError:
            continue
        if f"--vm={vm}".encode() in argv and alive(pid):
            out.append(pid)
    return out


def stop_vm(lab: str, vm: str) -> list[int]:
    return terminate(vm_pids(lab, vm), grace=10.0)  # the agent saves its state on SIGTERM


def stop_all(lab: str) -> list[int]:
    """SIGTERM every replication daemon of `lab`, SIGKILL what is left after a grace period."""
    return terminate(lab_pids(MARKER, lab))
