"""Processes a lab starts (VMs, NFC servers, ...): found by command line, stopped for good.

`lab down` must leave nothing behind even after a crash lost every record, so
each kind of lab process carries a marker and `--lab=<name>` in its command
line, and these helpers find and end them from /proc alone.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time

GRACE = 2.0  # s between SIGTERM and SIGKILL


def _stat(pid: int) -> list[str]:
    """The fields of /proc/<pid>/stat after the command name ([] when it is gone)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as f:
            return f.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return []


def alive(pid: int) -> bool:
    """A running process (a zombie has exited: its memory and sockets are gone)."""
    fields = _stat(pid)
    return bool(fields) and fields[0] not in ("Z", "X")


def parent(pid: int) -> int:
    """Its parent's pid (0: gone)."""
    fields = _stat(pid)
    return int(fields[1]) if len(fields) > 1 else 0


def cmdlines() -> dict[int, list[bytes]]:
    """The command line (argv, as bytes) of every process: one read of /proc."""
    out = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                out[int(entry)] = f.read().split(b"\0")
        except OSError:
            continue
    return out


def lab_argvs(marker: str, lab: str) -> dict[int, list[bytes]]:
    """pid -> argv of every process whose command line holds `marker` and `--lab=<lab>`.

    A fork of such a process carries its parent's command line until it execs (an agent
    starting a VM), or for good (a helper a library forks): it is the same instance, not
    another one, and is left out; it goes with its parent.
    """
    mark, token = marker.encode(), f"--lab={lab}".encode()
    found = {pid: argv for pid, argv in cmdlines().items()
             if token in argv and any(mark in a for a in argv)}
    return {pid: argv for pid, argv in found.items() if found.get(parent(pid), []) != argv}


def lab_pids(marker: str, lab: str) -> list[int]:
    return list(lab_argvs(marker, lab))


def terminate(pids: list[int], grace: float = GRACE) -> list[int]:
    """SIGTERM `pids`, SIGKILL whatever still runs after `grace` seconds; return `pids`."""
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while any(alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.02)
    for pid in pids:
        if alive(pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    return pids
