"""Start a VM process and wait until it is up: its pid, or the error it died with."""

from __future__ import annotations

from collections.abc import Sequence

from ..mgmt.spawn import start
from ..paths import inside
from .registry import MARKER, vms_dir

START_TIMEOUT = 60.0  # s: a large guest takes a while to populate its memory


def spawn(mode: str, lab: str, name: str, host: str, extra: Sequence[str] = (),
          pass_fds: Sequence[int] = ()) -> int:
    """Run `python -m vmknet.vm.vmx MODE ...` detached; the VM's pid once it is ready."""
    folder = vms_dir(lab)
    folder.mkdir(parents=True, exist_ok=True)
    return start(MARKER, [mode, f"--lab={lab}", f"--name={name}", f"--host={host}", *extra],
                 inside(folder, f"{name}.log"), START_TIMEOUT, pass_fds=pass_fds,  # SEC-5
                 what=f"VM {name} did not start on {host}", code="VmStartFailed")
