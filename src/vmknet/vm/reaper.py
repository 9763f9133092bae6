"""`lab down` ends the lab's VMs: every VM process of the lab, then its registry folder."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import time

from .registry import alive, lab_dir, vm_pids

GRACE = 2.0  # s between SIGTERM and SIGKILL


def kill_lab_vms(lab: str) -> list[int]:
    """Kill every VM process of `lab` (found by command line, not only the registry)."""
    pids = vm_pids(lab)
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + GRACE
    while any(alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.02)
    for pid in pids:
        if alive(pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    shutil.rmtree(lab_dir(lab), ignore_errors=True)
    return pids
