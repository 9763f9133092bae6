"""FT-2: who goes on when primary and secondary lose each other, decided once, outside both.

Two forms, chosen by the lab, so both sides of a pair always ask the same one:

- The lab has a controller (its local door `api.sock` exists): the controller decides
  (`controller.arbiter`): per VM a generation per `ft on`, the first claim of the
  current session wins, a claim of an older session never does, and every decision
  is an event in `vmknet events`. A side that cannot reach the controller within
  CONTROLLER_WAIT does not go on: never both, even if that means neither.
- No controller: VMware's own form, a test-and-set on shared storage; the shared
  storage is the lab's run directory on this machine, and the atomic operation is
  creating the session's arbiter file with O_CREAT|O_EXCL: the kernel lets exactly
  one creator win. The file is per protection session, so a new `ft on` starts clean.

The loser reads the winner's name and stands down.
"""

from __future__ import annotations

import contextlib
import os
import time
from typing import Any

from ..controller.client import ControllerClient
from ..errors import VmknetError
from ..mgmt.paths import api_socket
from ..paths import inside
from .records import ft_dir

PRIMARY, SECONDARY = "primary", "secondary"
CONTROLLER_WAIT = 10.0  # s a side keeps asking an unreachable controller before it gives up
CALL_TIMEOUT = 3.0


def on_controller(lab: str) -> bool:
    """The lab's FT decisions are the controller's (it has one), not a file's."""
    return api_socket(lab).exists()


def begin(lab: str, vm: str, session: str, primary: str, secondary: str,
          reprotect: bool = False) -> int | None:
    """A new pair of `vm` (ft on, re-protection): its generation on the controller.

    The file form needs nothing: its file is per session. None when there is no
    controller."""
    if not on_controller(lab):
        return None
    got = _call(lab, {"op": "begin", "vm": vm, "session": session, "primary": primary,
                      "secondary": secondary, "reprotect": reprotect})
    return int(got["generation"])


def claim(lab: str, vm: str, session: str, role: str) -> bool:
    """Test-and-set: True when `role` goes on (it won now, or had won before)."""
    if on_controller(lab):
        deadline = time.monotonic() + CONTROLLER_WAIT
        while True:
            try:
                got = _call(lab, {"op": "claim", "vm": vm, "session": session, "role": role})
                return bool(got.get("won"))
            except (VmknetError, OSError):
                if time.monotonic() > deadline:
                    return False  # undecided is not won: this side stops (FT-2)
                time.sleep(0.2)
    path = inside(ft_dir(lab), "arbiter", session)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return winner(lab, session) == role
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(role)
        f.flush()
        os.fsync(f.fileno())
    return True


def winner(lab: str, session: str) -> str | None:
    """The role that won the session's test-and-set (None: nobody asked yet).

    File form: a loser may read between the winner's create and its write: it retries
    briefly, an empty file means a write in progress, never a decision not made."""
    if on_controller(lab):
        with contextlib.suppress(VmknetError, OSError):
            found = _call(lab, {"op": "winner", "session": session}).get("winner")
            return str(found) if found else None
        return None
    path = inside(ft_dir(lab), "arbiter", session)
    for _ in range(400):  # 2 s
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        if text:
            return text
        time.sleep(0.005)
    return None


def forget(lab: str, vm: str, session: str) -> None:
    """`ft off`: the session is over (the controller drops the pair, the file goes)."""
    if on_controller(lab):
        with contextlib.suppress(VmknetError, OSError):
            _call(lab, {"op": "end", "vm": vm, "session": session})
    with contextlib.suppress(FileNotFoundError):
        inside(ft_dir(lab), "arbiter", session).unlink()


def _call(lab: str, params: dict[str, Any]) -> dict[str, Any]:
    got = ControllerClient(lab, timeout=CALL_TIMEOUT).call("ft.arbiter", params)
    return got if isinstance(got, dict) else {}
