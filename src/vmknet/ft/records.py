"""Which VMs are protected: /run/vmknet/labs/<lab>/ft/<vm>.json, and each one's event log.

The orchestrator writes the record when protection starts; the secondary rewrites it
when it goes live (failover), the primary when it goes on alone or stands down.
"""

from __future__ import annotations

import contextlib
import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..errors import NotFound
from ..paths import inside
from ..supervise.records import write_json
from ..vm.registry import lab_dir

PROTECTED, FAILED_OVER, UNPROTECTED, OFF = "protected", "failed-over", "unprotected", "off"


@dataclass
class FtRecord:
    vm: str
    lab: str
    primary: str  # host
    secondary: str  # host
    primary_pid: int
    secondary_pid: int
    secondary_control: str
    session: str  # the arbiter's key for this pair (FT-2)
    vcpus: int = 1
    epoch: float = 0.05  # s between checkpoints
    state: str = PROTECTED
    timeout: float = 2.0  # s without a checkpoint or its ACK: the link is lost
    output_port: int | None = None  # the VM's output stream (output commit), if any
    output_rate: float = 200.0  # its records per second
    encryption: str = "opportunistic"  # SEC-1 mode asked for: disabled|opportunistic|required
    encrypted: bool = False  # the FT logging link is AES-256-GCM
    since: float = field(default_factory=time.time)


def ft_dir(lab: str) -> Path:
    return lab_dir(lab) / "ft"


def save(record: FtRecord) -> None:
    write_json(inside(ft_dir(record.lab), f"{record.vm}.json"), asdict(record))


def load(lab: str, vm: str) -> FtRecord:
    try:
        data = json.loads(inside(ft_dir(lab), f"{vm}.json").read_text(encoding="utf-8"))
        return FtRecord(**data)
    except (OSError, ValueError, TypeError):
        raise NotFound(f"VM {vm} is not protected by Fault Tolerance in lab {lab}: "
                       f"see 'vmknet vm ft on {vm} --secondary HOST'", vm=vm) from None


def records(lab: str) -> list[FtRecord]:
    folder = ft_dir(lab)
    out = []
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        with contextlib.suppress(NotFound):
            out.append(load(lab, path.stem))
    return out


def update(lab: str, vm: str, **changes: Any) -> None:
    """Change fields of a record if it exists (a process that outlived `ft off` says nothing)."""
    with contextlib.suppress(NotFound):
        rec = load(lab, vm)
        save(FtRecord(**(asdict(rec) | changes)))


def remove(lab: str, vm: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        inside(ft_dir(lab), f"{vm}.json").unlink()


def event(lab: str, vm: str, kind: str, message: str, **details: Any) -> None:
    """Append one event (failover, stand-down, link lost) to the VM's FT log."""
    path = inside(ft_dir(lab), f"{vm}.events")
    path.parent.mkdir(parents=True, exist_ok=True)
    line = json.dumps({"time": time.time(), "event": kind, "message": message} | details)
    with path.open("a", encoding="utf-8") as f:
        f.write(line + "\n")


def events(lab: str, vm: str) -> list[dict[str, Any]]:
    try:
        text = inside(ft_dir(lab), f"{vm}.events").read_text(encoding="utf-8")
    except OSError:
        return []
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def checkpoint_log(lab: str, vm: str) -> Path:
    """Verify mode: per checkpoint, a line "N digest writes" (its memory, its write counter)."""
    return inside(ft_dir(lab), f"{vm}.digests")


def logged_digests(lab: str, vm: str) -> dict[int, str]:
    return {n: digest for n, (digest, _) in logged_checkpoints(lab, vm).items()}


def logged_checkpoints(lab: str, vm: str) -> dict[int, tuple[str, int]]:
    """Verify mode: checkpoint -> (memory digest, the workload's writes) at its pause."""
    try:
        text = checkpoint_log(lab, vm).read_text(encoding="utf-8")
    except OSError:
        return {}
    out = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 3:
            out[int(parts[0])] = (parts[1], int(parts[2]))
    return out
