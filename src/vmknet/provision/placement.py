"""Where a VM's files are: /run/vmknet/labs/<lab>/vmfiles/<vm>.json (host, datastore).

Separate from vm.registry on purpose: that one follows the VM *process* (written by
the process, dropped when it dies); this one follows the VM's *files*, so a powered-off
VM (no process) stays registered. It is written only once a VM's files are complete
at the place it names: a migration updates it after the last file is verified and
renamed, never before (no half-written VM is ever registered).
"""

from __future__ import annotations

import contextlib
import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

from ..errors import NotFound
from ..vm.registry import lab_dir


@dataclass(frozen=True)
class Placement:
    vm: str
    lab: str
    host: str
    datastore: str
    base: str  # the Datastores base (tests use a tmp dir; the CLI $VMKNET_DATASTORE_BASE)


def _dir(lab: str) -> Path:
    return lab_dir(lab) / "vmfiles"


def save(p: Placement) -> None:
    path = _dir(p.lab) / f"{p.vm}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(asdict(p)), encoding="utf-8")
    tmp.replace(path)  # atomic: a reader sees the old place or the new, never half


def load(lab: str, vm: str) -> Placement:
    try:
        return Placement(**json.loads((_dir(lab) / f"{vm}.json").read_text("utf-8")))
    except (OSError, ValueError, TypeError):
        raise NotFound(f"VM {vm!r} has no files in lab {lab} (create it with --disk)",
                       vm=vm) from None


def find(lab: str, vm: str) -> Placement | None:
    with contextlib.suppress(NotFound):
        return load(lab, vm)
    return None


def records(lab: str) -> list[Placement]:
    folder = _dir(lab)
    out = []
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        with contextlib.suppress(NotFound):
            out.append(load(lab, path.stem))
    return out


def remove(lab: str, vm: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        (_dir(lab) / f"{vm}.json").unlink()
