"""Which VMs run where: /run/vmknet/labs/<lab>/vms/<vm>.json, one file per VM.

A VM's record is written by the process that runs it (at boot, and by the
target at switchover of a live migration), so the registry follows the
workload, not the command that asked. It lives on /run with the lab's own
registry (`vmknet.lab.registry`): gone at reboot together with the namespaces.
Host capabilities that a migration agent declares (`hosts/<host>.json`, e.g.
no encryption support, SEC-1) live beside it.
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ..errors import NotFound
from ..lab.registry import run_dir
from ..paths import inside
from ..processes import alive as alive  # re-exported: callers ask the registry
from ..processes import lab_pids
from ..supervise.records import VMX, write_json

MARKER = VMX  # in every VM process's command line: `lab down` finds them by it


@dataclass
class VmRecord:
    name: str
    lab: str
    host: str
    pid: int
    memory: int  # bytes
    dirty_rate: int  # bytes per second
    control: str  # unix socket path of the VM process
    since: float  # time.time() of boot or of the last switchover
    disk: dict[str, Any] | None = None  # the virtual disk's DiskSpec (vm.disk), if any


def lab_dir(lab: str) -> Path:
    return run_dir() / lab


def vms_dir(lab: str) -> Path:
    return lab_dir(lab) / "vms"


def save(record: VmRecord) -> None:
    write_json(inside(vms_dir(record.lab), f"{record.name}.json"), asdict(record))


def load(lab: str, name: str) -> VmRecord:
    try:
        data = json.loads(inside(vms_dir(lab), f"{name}.json").read_text(encoding="utf-8"))
        return VmRecord(**data)
    except (OSError, ValueError, TypeError):
        raise NotFound(f"No VM {name!r} in lab {lab}: see 'vmknet vm list'", vm=name) from None


def records(lab: str) -> list[VmRecord]:
    folder = vms_dir(lab)
    out = []
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        with contextlib.suppress(NotFound):
            out.append(load(lab, path.stem))
    return out


def remove(lab: str, name: str, pid: int | None = None) -> None:
    """Forget a VM (only if its record still names `pid`, when given: it may have moved)."""
    path = inside(vms_dir(lab), f"{name}.json")  # SEC-5
    with contextlib.suppress(NotFound):
        if pid is not None and load(lab, name).pid != pid:
            return
    with contextlib.suppress(FileNotFoundError):
        path.unlink()


def set_host_encryption(lab: str, host: str, supported: bool) -> None:
    """Declare whether `host`'s migration agent can do encrypted vMotion (SEC-1)."""
    write_json(inside(lab_dir(lab), "hosts", f"{host}.json"), {"encryption": supported})


def host_encryption(lab: str, host: str) -> bool:
    try:
        data = json.loads(inside(lab_dir(lab), "hosts", f"{host}.json").read_text("utf-8"))
    except (OSError, ValueError):
        return True  # every host can, unless it said otherwise
    return bool(data.get("encryption", True)) if isinstance(data, dict) else True


def vm_pids(lab: str) -> list[int]:
    """Every VM process of `lab` (running or incoming), found by its command line."""
    return lab_pids(MARKER, lab)
