"""Start a process as a child of the caller and wait until it is up; stop processes for good.

The caller stays its parent (the host agent: it reaps the child and sees it
die). The child leads its own session, so a signal to the caller's group does
not reach it and it outlives a caller killed with -9 (a VM outlives its agent,
as on an ESXi hostd restart). It is up when it wrote its pid on `--ready-fd`
(a VM) or when `ready(pid)` says so (an NFC server: its record appeared).
"""

from __future__ import annotations

import contextlib
import os
import select
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from ..errors import VmknetError
from ..processes import terminate
from .records import ProcessRecord, remove, save

START_TIMEOUT = 60.0  # s: a large guest takes a while to populate its memory


@dataclass
class Child:
    record: ProcessRecord
    proc: subprocess.Popen[bytes]


def _tail(log: Path) -> str:
    lines = log.read_text(errors="replace").strip().splitlines()[-1:] if log.exists() else []
    return " ".join(lines) or "no output"


def start(kind: str, lab: str, host: str, name: str, module: str, args: Sequence[str],
          log: Path, *, ready_fd: bool = True, ready: Callable[[int], bool] | None = None,
          timeout: float = START_TIMEOUT, pass_fds: Sequence[int] = ()) -> Child:
    """Run `python -m MODULE ARGS` as a child; its record once it is up (saved in the
    registry), or VmknetError(ProcessStartFailed) with the last line of its log.
    `pass_fds`: open files the child inherits (an incoming VM's listeners); the caller
    keeps and closes its own copies."""
    log.parent.mkdir(parents=True, exist_ok=True)
    read_end, write_end = os.pipe() if ready_fd else (-1, -1)
    argv = [sys.executable, "-m", module, *args]
    if ready_fd:
        argv.append(f"--ready-fd={write_end}")
    try:
        with log.open("ab") as err:
            proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=err, stderr=err,
                                    pass_fds=(*pass_fds, *((write_end,) if ready_fd else ())),
                                    start_new_session=True)
        if ready_fd:
            os.close(write_end)
            write_end = -1
            # The child holds the only write end: EOF means it died before it was ready.
            got, _, _ = select.select([read_end], [], [], timeout)
            line = os.read(read_end, 64).decode().strip() if got else ""
            up = line == str(proc.pid)
        else:
            up = _wait(proc, ready or (lambda _pid: True), timeout)
    finally:
        for fd in (read_end, write_end):
            if fd >= 0:
                os.close(fd)
    if not up:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        proc.wait()
        raise VmknetError(f"{kind} {name} did not start on {host}: {_tail(log)} (log {log})",
                          code="ProcessStartFailed", kind=kind, name=name, host=host)
    rec = ProcessRecord(kind, name, host, lab, proc.pid, time.time(), module, str(log))
    save(rec)
    return Child(rec, proc)


def _wait(proc: subprocess.Popen[bytes], ready: Callable[[int], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if ready(proc.pid):
            return True
        if proc.poll() is not None:
            return False
        time.sleep(0.05)
    return False


def stop(records: Sequence[ProcessRecord], grace: float = 2.0) -> list[int]:
    """SIGTERM each process, SIGKILL what still runs after `grace`; forget their records."""
    pids = terminate([r.pid for r in records], grace)
    for rec in records:
        remove(rec)
    return pids
