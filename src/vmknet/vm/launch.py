"""Start a VM process and wait until it is up: its pid, or the error it died with."""

from __future__ import annotations

import os
import select
import subprocess
import sys
from collections.abc import Sequence

from ..errors import VmknetError
from ..paths import inside
from .registry import MARKER, vms_dir

START_TIMEOUT = 60.0  # s: a large guest takes a while to populate its memory


def spawn(mode: str, lab: str, name: str, host: str, extra: Sequence[str] = (),
          pass_fds: Sequence[int] = ()) -> int:
    """Run `python -m vmknet.vm.vmx MODE ...` detached; the VM's pid once it is ready."""
    folder = vms_dir(lab)
    folder.mkdir(parents=True, exist_ok=True)
    log = inside(folder, f"{name}.log")  # SEC-5
    read_end, write_end = os.pipe()
    try:
        with log.open("ab") as err:
            proc = subprocess.Popen(
                [sys.executable, "-m", MARKER, mode, f"--lab={lab}", f"--name={name}",
                 f"--host={host}", f"--ready-fd={write_end}", *extra],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err,
                pass_fds=(*pass_fds, write_end), start_new_session=True)
        os.close(write_end)
        write_end = -1
        proc.wait()  # the first process only forks the VM off and exits
        ready, _, _ = select.select([read_end], [], [], START_TIMEOUT)
        line = os.read(read_end, 64).decode().strip() if ready else ""
    finally:
        os.close(read_end)
        if write_end >= 0:
            os.close(write_end)
    if not line.isdigit():
        tail = log.read_text(errors="replace").strip().splitlines()[-1:] if log.exists() else []
        raise VmknetError(f"VM {name} did not start on {host}: {' '.join(tail) or 'no output'}"
                          f" (log {log})", code="VmStartFailed")
    return int(line)
