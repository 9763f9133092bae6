"""Find a lab's processes: the registry where it has a record, /proc for the truth.

A process is the lab's when its command line holds its kind's marker and
`--lab=<lab>`; its name and host come from its own flags, so a crash that lost
every record (or a controller or agent killed with -9) loses nothing here.
"""

from __future__ import annotations

import os

from ..processes import alive
from .records import ENDPOINT, MARKERS, REPLICATION, VMX, ProcessRecord, saved

_TICKS = os.sysconf("SC_CLK_TCK")


def _argv(pid: int) -> list[str]:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return [a.decode(errors="replace") for a in f.read().split(b"\0") if a]
    except OSError:
        return []


def _flag(argv: list[str], name: str) -> str:
    prefix = f"--{name}="
    return next((a[len(prefix):] for a in argv if a.startswith(prefix)), "")


def _boot_time() -> float:
    with open("/proc/stat", encoding="ascii") as f:
        for line in f:
            if line.startswith("btime "):
                return float(line.split()[1])
    return 0.0


def _started(pid: int) -> float:
    """When `pid` started (time.time() scale), from /proc/<pid>/stat."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return _boot_time() + int(fields[19]) / _TICKS  # field 22: starttime, in ticks
    except (OSError, IndexError, ValueError):
        return 0.0


def parse(pid: int, argv: list[str], lab: str) -> ProcessRecord | None:
    """The record a command line stands for, or None when it is not a process of `lab`."""
    if f"--lab={lab}" not in argv:
        return None
    for i, arg in enumerate(argv):
        if arg == VMX:
            mode = argv[i + 1] if i + 1 < len(argv) else ""
            kind = mode if mode in ("incoming", "ft-secondary") else "vm"
            return ProcessRecord(kind, _flag(argv, "name"), _flag(argv, "host"), lab, pid,
                                 _started(pid), VMX)
        if arg == REPLICATION:  # the source agent (its host: --host), or the whole daemon
            host = _flag(argv, "host") or _flag(argv, "server")
            return ProcessRecord("replication", _flag(argv, "vm"), host, lab,
                                 pid, _started(pid), REPLICATION)
        if arg == ENDPOINT:
            mode = argv[i + 1] if i + 1 < len(argv) else ""
            part = {"server": "replication-server", "replica": "replica-nfc"}.get(mode)
            if part is None:
                return None
            host = _flag(argv, "host")
            return ProcessRecord(part, host, host, lab, pid, _started(pid), ENDPOINT)
        if arg in (MARKERS["nfc"], MARKERS["vsan"]):  # one per host, named after it
            host = _flag(argv, "host")
            kind = "nfc" if arg == MARKERS["nfc"] else "vsan"
            return ProcessRecord(kind, host, host, lab, pid, _started(pid), arg)
    return None


def scan(lab: str) -> list[ProcessRecord]:
    """Every running process of `lab`, from /proc alone."""
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            rec = parse(int(entry), _argv(int(entry)), lab)
            if rec is not None and alive(rec.pid):
                out.append(rec)
    return sorted(out, key=lambda r: (r.host, r.kind, r.name, r.pid))


def find(lab: str, host: str | None = None, kind: str | None = None) -> list[ProcessRecord]:
    """The running processes of `lab` (on `host`, of `kind`): /proc, with the log path of
    the registry's record where one names the same pid."""
    known = {r.pid: r for r in saved(lab)}
    out = []
    for rec in scan(lab):
        if (host is None or rec.host == host) and (kind is None or rec.kind == kind):
            same = known.get(rec.pid)
            out.append(same if same is not None and same.kind == rec.kind else rec)
    return out
