"""Start a long-lived vmknet process detached, and know it is ready (or why it died).

    pid = start("vmknet.agent", ["--lab=lab", "--host=esx01", ...], log=path)

The child runs `python -m MODULE ... --ready-fd=N`; it calls `detach()` (fork,
new session: the starter reaps the first process at once and init adopts the
daemon), sets itself up, then `ready(fd)` writes its pid. A child that dies
first leaves the last line of its log as the error. Its command line carries
the module name and `--lab=<lab>`, which is how `vmknet.processes` finds it
after any crash.
"""

from __future__ import annotations

import os
import select
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from ..errors import VmknetError

START_TIMEOUT = 20.0


def start(module: str, args: Sequence[str], log: Path, timeout: float = START_TIMEOUT, *,
          pass_fds: Sequence[int] = (), what: str | None = None,
          code: str = "ProcessStartFailed") -> int:
    """The daemon's pid once it is ready; else VmknetError(`code`) saying `what` failed
    (default "<module> did not start") with the last line of its log."""
    log.parent.mkdir(parents=True, exist_ok=True)
    read_end, write_end = os.pipe()
    try:
        with log.open("ab") as err:
            proc = subprocess.Popen(
                [sys.executable, "-m", module, *args, f"--ready-fd={write_end}"],
                stdin=subprocess.DEVNULL, stdout=err, stderr=err,
                pass_fds=(*pass_fds, write_end), start_new_session=True)
        os.close(write_end)
        write_end = -1
        proc.wait()  # the first process only forks the daemon off and exits
        ready, _, _ = select.select([read_end], [], [], timeout)
        line = os.read(read_end, 64).decode().strip() if ready else ""
    finally:
        os.close(read_end)
        if write_end >= 0:
            os.close(write_end)
    if not line.isdigit():
        tail = log.read_text(errors="replace").strip().splitlines()[-1:] if log.exists() else []
        raise VmknetError(f"{what or f'{module} did not start'}: "
                          f"{' '.join(tail) or 'no output'} (log {log})", code=code)
    return int(line)


def detach() -> None:
    """Fork; the parent exits at once, the child leads a new session."""
    if os.fork():
        os._exit(0)
    os.setsid()


def ready(fd: int | None) -> None:
    if fd is None:
        return
    os.write(fd, f"{os.getpid()}\n".encode())
    os.close(fd)
