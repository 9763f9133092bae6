"""`lab down` ends the lab's VMs: every VM process of the lab, then its registry folder."""

from __future__ import annotations

import shutil

from ..processes import terminate
from .registry import lab_dir, vm_pids


def kill_lab_vms(lab: str) -> list[int]:
    """Kill every VM process of `lab` (found by command line, not only the registry)."""
    pids = terminate(vm_pids(lab))
    shutil.rmtree(lab_dir(lab), ignore_errors=True)
    return pids
