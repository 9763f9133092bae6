"""Kill points for the kernel tests: the agent dies with SIGKILL half way through its work.

`VMKNET_AGENT_FAULT=realise:N` in an agent's environment (the test sets it
before `lab status --repair` or `controller.lab.start` starts the agent) makes
the agent kill itself right after the N-th kernel op its rollback guard runs
(a rollout's part, or an undo); `VMKNET_AGENT_FAULT=watch`, as soon as a part
it ran is armed on disk, before any confirmation. The states a real crash
leaves, which the restarted agent must bring back to the committed state
(MGMT-2's resume, MGMT-3's reconcile). Unset, nothing is wrapped or counted.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Callable

from ..dataplane.base import Backend
from ..dataplane.kops import KernelOp
from ..dataplane.kstate import KernelState

ENV = "VMKNET_AGENT_FAULT"


def parse(text: str) -> int | None:
    """The op count after which to die, from `realise:N`; None for anything else."""
    kind, _, count = text.partition(":")
    return int(count) if kind == "realise" and count.isdigit() and int(count) > 0 else None


class _Dying:
    def __init__(self, inner: Backend, after: list[int]) -> None:
        self.inner, self.name, self._left = inner, inner.name, after

    def read(self, prefix: str) -> KernelState:
        return self.inner.read(prefix)

    def execute(self, op: KernelOp) -> None:
        self.inner.execute(op)
        self._left[0] -= 1
        if self._left[0] == 0:
            os.kill(os.getpid(), signal.SIGKILL)


def point(name: str) -> None:
    """Die here when the environment names this point (`VMKNET_AGENT_FAULT=<name>`)."""
    if os.environ.get(ENV) == name:
        os.kill(os.getpid(), signal.SIGKILL)


def backend(factory: Callable[[], Backend]) -> Callable[[], Backend]:
    """`factory`, or a wrapper of it that dies where the environment says."""
    after = parse(os.environ.get(ENV, ""))
    if after is None:
        return factory
    left = [after]  # one count for the whole process, across backends
    return lambda: _Dying(factory(), left)
