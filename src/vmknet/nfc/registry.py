"""Where NFC server processes are recorded: /run/vmknet/labs/<lab>/nfc/<host>.json.

`lab down` removes /run/vmknet/labs/<lab>/ (with the VM registry beside it);
a server process watches its own record and exits when it is gone, or when
its host's namespaces are, so a lab never outlives its NFC servers. Servers
can also be found by command line (`MARKER` and `--lab=<lab>`), like VMs.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import time
from pathlib import Path

from ..lab.registry import run_dir

MARKER = "vmknet.nfc.server"
GRACE = 2.0


def record_path(lab: str, host: str) -> Path:
    return run_dir() / lab / "nfc" / f"{host}.json"


def record(lab: str, host: str, data: dict[str, object]) -> Path:
    path = record_path(lab, host)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data), encoding="utf-8")
    tmp.replace(path)  # a reader never sees half a record
    return path


def forget(lab: str, host: str, pid: int | None = None) -> None:
    path = record_path(lab, host)
    with contextlib.suppress(OSError, ValueError):
        if pid is not None and json.loads(path.read_text("utf-8")).get("pid") != pid:
            return  # another server took over this host's record
        path.unlink()


def server_pids(lab: str) -> list[int]:
    """Every NFC server process of `lab`, found by its command line."""
    token = f"--lab={lab}".encode()
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                argv = f.read().split(b"\0")
        except OSError:
            continue
        if any(MARKER.encode() in a for a in argv) and token in argv:
            out.append(int(entry))
    return out


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as f:
            return f.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except (OSError, IndexError):
        return False


def stop_servers(lab: str) -> list[int]:
    """SIGTERM every NFC server of `lab`, SIGKILL what is left after GRACE seconds."""
    pids = server_pids(lab)
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + GRACE
    while any(_alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.02)
    for pid in pids:
        if _alive(pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    return pids
