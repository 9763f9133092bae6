"""Where NFC server processes are recorded: /run/vmknet/labs/<lab>/nfc/<host>.json.

`lab down` removes /run/vmknet/labs/<lab>/ (with the VM registry beside it);
a server process watches its own record and exits when it is gone, or when
its host's namespaces are, so a lab never outlives its NFC servers. Servers
can also be found by command line (`MARKER` and `--lab=<lab>`), like VMs.
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

from ..lab.registry import run_dir
from ..processes import lab_pids, terminate
from ..supervise.records import NFC, write_json

MARKER = NFC


def record_path(lab: str, host: str) -> Path:
    return run_dir() / lab / "nfc" / f"{host}.json"


def record(lab: str, host: str, data: dict[str, object]) -> Path:
    return write_json(record_path(lab, host), data)


def forget(lab: str, host: str, pid: int | None = None) -> None:
    path = record_path(lab, host)
    with contextlib.suppress(OSError, ValueError):
        if pid is not None and json.loads(path.read_text("utf-8")).get("pid") != pid:
            return  # another server took over this host's record
        path.unlink()


def server_pids(lab: str) -> list[int]:
    """Every NFC server process of `lab`, found by its command line."""
    return lab_pids(MARKER, lab)


def stop_servers(lab: str) -> list[int]:
    """SIGTERM every NFC server of `lab`, SIGKILL what is left after a grace period."""
    return terminate(server_pids(lab))
