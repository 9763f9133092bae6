"""The backend contract: read the kernel state below a prefix, execute one kernel operation."""

from __future__ import annotations

from typing import Protocol

from .kops import KernelOp
from .kstate import KernelState


class Backend(Protocol):
    """Implemented by `linux.LinuxBackend` (pyroute2) and `memory.MemoryBackend`.

    `execute` raises `vmknet.errors.DataplaneError` (kernel errors are
    translated in the backend, in one place) and leaves the kernel as it was
    before that one operation.
    """

    name: str

    def read(self, prefix: str) -> KernelState:
        """Everything in the namespaces whose names start with `prefix`."""
        ...

    def execute(self, op: KernelOp) -> None: ...
