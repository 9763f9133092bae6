"""Opt-in profiling of the engine's threads (VMKNET_PROFILE_DIR=<dir>): a bench hook.

py-spy cannot attach in the sandbox the benches run in, and cProfile only sees the
thread that enabled it, so each hot thread of the vMotion and NFC engines runs its
body under `profiled(name)`: with the variable set, a cProfile of that thread is
written to <dir>/<name>-<pid>-<n>-<thread id>.prof when it ends (read it with pstats);
without it, nothing is done (one environment lookup per thread start).
"""

from __future__ import annotations

import contextlib
import cProfile
import itertools
import os
import threading
from collections.abc import Iterator

PROFILE_ENV = "VMKNET_PROFILE_DIR"
_SEQ = itertools.count(1)  # thread ids are reused round after round: number the files


@contextlib.contextmanager
def profiled(name: str) -> Iterator[None]:
    folder = os.environ.get(PROFILE_ENV, "")
    if not folder:
        yield
        return
    prof = cProfile.Profile()
    prof.enable()
    try:
        yield
    finally:
        prof.disable()
        with contextlib.suppress(OSError):
            os.makedirs(folder, exist_ok=True)
            prof.dump_stats(os.path.join(
                folder, f"{name}-{os.getpid()}-{next(_SEQ):03d}-{threading.get_ident()}.prof"))
