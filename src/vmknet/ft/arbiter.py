"""FT-2: who goes on when primary and secondary lose each other, decided once, outside both.

VMware FT settles it with an atomic test-and-set on shared storage; here the shared
storage is the lab's run directory on this machine, and the atomic operation is
creating the session's arbiter file with O_CREAT|O_EXCL: the kernel lets exactly one
creator win, whichever process asks first. The loser reads the winner's name and
stands down. The file is per protection session, so a new `ft on` starts clean.
"""

from __future__ import annotations

import contextlib
import os
import time

from ..paths import inside
from .records import ft_dir

PRIMARY, SECONDARY = "primary", "secondary"


def claim(lab: str, session: str, role: str) -> bool:
    """Test-and-set: True when `role` goes on (it won now, or had won before)."""
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

    A loser may read between the winner's create and its write: it retries briefly,
    an empty file means a write in progress, never a decision not made."""
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


def forget(lab: str, session: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        inside(ft_dir(lab), "arbiter", session).unlink()
