"""Per-namespace sysctls, written and read through /proc/sys inside the namespace.

/proc/sys/net shows the network namespace of the thread that opens the file,
so reads and writes run in a short-lived thread inside the namespace
(`netns.in_netns`).
"""

from __future__ import annotations

from ..kops import SetSysctl
from ..kstate import MANAGED_SYSCTLS
from . import netns

MANAGED = MANAGED_SYSCTLS
"""The sysctls vmknet manages (the contract's list); `read` reports all of them, always."""


def proc_path(key: str) -> str:
    return "/proc/sys/" + key.replace(".", "/")


def read_here(keys: tuple[str, ...] = MANAGED) -> dict[str, str]:
    """The values in the calling thread's namespace (missing keys are left out)."""
    out = {}
    for key in keys:
        try:
            with open(proc_path(key)) as f:
                out[key] = f.read().strip()
        except FileNotFoundError:
            continue
    return out


def _write_here(key: str, value: str) -> None:
    with open(proc_path(key), "w") as f:
        f.write(value)


def set_sysctl(op: SetSysctl) -> None:
    netns.in_netns(op.ns, lambda: _write_here(op.key, op.after))


def read(ns: str, keys: tuple[str, ...] = MANAGED) -> dict[str, str]:
    return netns.in_netns(ns, lambda: read_here(keys))
