"""The process registry: /run/vmknet/labs/<lab>/processes/<kind>-<name>.json, one per process.

A record says who started what and where its log is; the command line of the
process says the rest (its kind's marker and `--lab=<lab>`), so `find` works
from /proc alone when every record was lost. `write_json` is the one atomic
writer for every record file of the lab's processes: a reader sees the old
file or the new one, never half of one.
"""

from __future__ import annotations

import contextlib
import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ..errors import InvalidArgument
from ..lab.registry import run_dir
from ..paths import inside

VMX = "vmknet.vm.vmx"
NFC = "vmknet.nfc.server"
REPLICATION = "vmknet.replication.daemon"
ENDPOINT = "vmknet.replication.endpoint"
VSAN = "vmknet.vsan.node"
# kind -> the module in its command line (`python -m MODULE ...`): how /proc finds it
MARKERS = {"vm": VMX, "incoming": VMX, "ft-secondary": VMX, "nfc": NFC,
           "replication": REPLICATION, "replication-server": ENDPOINT, "replica-nfc": ENDPOINT,
           "vsan": VSAN}
KINDS = tuple(MARKERS)


@dataclass(frozen=True)
class ProcessRecord:
    kind: str  # vm | incoming | ft-secondary | nfc | replication | replication-server | ...
    name: str  # the VM (vm, incoming, replication) or the host (the others)
    host: str
    lab: str
    pid: int
    started: float  # time.time() of its start
    marker: str  # the module in its command line
    log: str = ""  # its stderr, when known (a record lost in a crash: "")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ProcessRecord:
        kind = str(data["kind"])
        if kind not in MARKERS:
            raise InvalidArgument(f"Unknown process kind {kind!r}")
        return cls(kind, str(data["name"]), str(data["host"]), str(data["lab"]),
                   int(data["pid"]), float(data["started"]), str(data["marker"]),
                   str(data.get("log", "")))


def write_json(path: Path, data: Any, *, indent: int | None = None,
               mode: int | None = None) -> Path:
    """Write `data` as JSON to `path` atomically (a temporary file, then rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC
    fd = os.open(tmp, flags, 0o644 if mode is None else mode)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(data, f, indent=indent)
        tmp.replace(path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    return path


def read_json(path: Path) -> dict[str, Any]:
    """A record file's object, or {} when it is missing or not a JSON object."""
    with contextlib.suppress(OSError, ValueError):
        data = json.loads(path.read_text("utf-8"))
        if isinstance(data, dict):
            return data
    return {}


def registry_dir(lab: str) -> Path:
    return inside(run_dir(), lab) / "processes"


def record_path(lab: str, kind: str, name: str) -> Path:
    return inside(registry_dir(lab), f"{kind}-{name}.json")  # SEC-5


def save(rec: ProcessRecord) -> Path:
    return write_json(record_path(rec.lab, rec.kind, rec.name), rec.to_dict())


def load(lab: str, kind: str, name: str) -> ProcessRecord | None:
    with contextlib.suppress(KeyError, ValueError, TypeError, InvalidArgument):
        return ProcessRecord.from_dict(read_json(record_path(lab, kind, name)))
    return None


def saved(lab: str) -> list[ProcessRecord]:
    """Every record of `lab` (running or not)."""
    folder = registry_dir(lab)
    out = []
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        with contextlib.suppress(KeyError, ValueError, TypeError, InvalidArgument):
            out.append(ProcessRecord.from_dict(read_json(path)))
    return out


def remove(rec: ProcessRecord) -> None:
    """Forget `rec`, unless its file names another process by now (a restart took over)."""
    path = record_path(rec.lab, rec.kind, rec.name)
    current = load(rec.lab, rec.kind, rec.name)
    if current is not None and current.pid != rec.pid:
        return
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
