"""Replication processes of a lab: their records, and how they are found and stopped.

One process per replicated VM (`python -m vmknet.replication.daemon ... --vm=VM`): in a
lab with a controller the source agent alone, its host agent's child, beside one
endpoint process per server host and per target host (`replication.endpoint`, the
agents' children too); without a controller the one process also holds the server and
the target's endpoint. It records itself in
/run/vmknet/labs/<lab>/replication/daemon-<vm>.json and logs to daemon-<vm>.log beside
it (an agent's child: processes/replication-<vm>.log); `lab down` finds them all by
command line (`MARKER`, `ENDPOINT` and `--lab=<lab>`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..paths import inside
from ..processes import alive, lab_pids, terminate
from ..supervise.records import ENDPOINT, REPLICATION, read_json
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


def _argvs(lab: str, marker: str) -> dict[int, list[bytes]]:
    out = {}
    for pid in lab_pids(marker, lab):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                out[pid] = f.read().split(b"\0")
        except OSError:
            continue
    return out


def _flag(argv: list[bytes], name: str) -> str:
    prefix = f"--{name}=".encode()
    return next((a[len(prefix):].decode(errors="replace") for a in argv
                 if a.startswith(prefix)), "")


def vm_pids(lab: str, vm: str) -> list[int]:
    """The daemon processes of `vm` (by command line: `--vm=<vm>`)."""
    return [pid for pid, argv in _argvs(lab, MARKER).items()
            if f"--vm={vm}".encode() in argv and alive(pid)]


def stop_vm(lab: str, vm: str) -> list[int]:
    """Stop `vm`'s replication: its daemon (the agent saves its state on SIGTERM), then the
    server and target endpoints no other replication of the lab goes through."""
    mine = {pid: argv for pid, argv in _argvs(lab, MARKER).items()
            if f"--vm={vm}".encode() in argv and alive(pid)}
    pids = terminate(list(mine), grace=10.0)
    others = _argvs(lab, MARKER).values()
    used = {("server", _flag(a, "server")) for a in others}
    used |= {("replica", _flag(a, "target")) for a in others}
    wanted = {("server", _flag(a, "server")) for a in mine.values()}
    wanted |= {("replica", _flag(a, "target")) for a in mine.values()}
    ends = [pid for pid, argv in _argvs(lab, ENDPOINT).items()
            if len(argv) > 3 and (argv[3].decode(errors="replace"), _flag(argv, "host"))
            in wanted - used]
    return pids + (terminate(ends) if ends else [])


def stop_all(lab: str) -> list[int]:
    """SIGTERM every replication process of `lab`, SIGKILL what is left after a grace period."""
    return terminate(lab_pids(MARKER, lab) + lab_pids(ENDPOINT, lab))
