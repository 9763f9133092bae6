"""Helpers of the kernel tests: ops for a hand-built state, commands inside namespaces."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable

from vmknet.dataplane.kops import (
    AddAddress,
    AddLink,
    AddRoute,
    AddRule,
    CreateNamespace,
    KernelOp,
    SetQdisc,
    SetResolver,
    SetSysctl,
)
from vmknet.dataplane.kstate import KernelState


def ops_for(state: KernelState) -> list[KernelOp]:
    """The ops that build `state` from nothing (a hand-written plan; no render/plan needed)."""
    ops: list[KernelOp] = [CreateNamespace(ns) for ns in sorted(state.namespaces)]
    links = sorted(state.links.values(), key=lambda link: (link.kind != "bridge", link.key))
    done: set[tuple[str, str]] = set()
    for link in links:
        if link.key in done:
            continue
        peer = state.links[link.peer] if link.peer is not None else None
        ops.append(AddLink(link, peer))
        done |= {link.key} | ({peer.key} if peer else set())
    ops += [AddAddress(a) for a in sorted(state.addresses, key=repr)]
    ops += [AddRoute(r) for r in sorted(state.routes, key=repr)]
    ops += [AddRule(r) for r in sorted(state.rules, key=repr)]
    ops += [SetSysctl(ns, key, None, v) for (ns, key), v in sorted(state.sysctls.items())]
    ops += [SetQdisc(q.ns, q.ifname, None, q) for q in state.qdiscs.values()]
    ops += [SetResolver(ns, None, r) for ns, r in state.resolvers.items()]
    return ops


def undo(ops: list[KernelOp]) -> list[KernelOp]:
    return [op.inverse() for op in reversed(ops)]


def run(ns: str, *cmd: str, timeout: float = 10) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", "netns", "exec", ns, *cmd], capture_output=True, text=True,
                          timeout=timeout, check=False)


def ping(ns: str, dst: str, *, size: int | None = None, df: bool = False,
         source: str | None = None, wait: float = 1.0, count: int = 1) -> bool:
    cmd = ["ping", "-n", "-q", "-c", str(count), "-W", str(wait)]
    if ":" in dst:
        cmd.append("-6")
    if size is not None:
        cmd += ["-s", str(size)]
    if df:
        cmd += ["-M", "do"]
    if source is not None:
        cmd += ["-I", source]
    return run(ns, *cmd, dst, timeout=wait * count + 5).returncode == 0


def wait_until(check: Callable[[], bool], limit: float, step: float = 0.05) -> float | None:
    """Seconds until `check()` held, or None if it did not within `limit`."""
    start = time.monotonic()
    while time.monotonic() - start < limit:
        if check():
            return time.monotonic() - start
        time.sleep(step)
    return None


def port_states(ns: str) -> dict[str, str]:
    """STP state per bridge port ("forwarding", "blocking", ...), from `bridge -j link`."""
    out = run(ns, "bridge", "-j", "link", "show").stdout
    return {p["ifname"]: p.get("state", "?") for p in json.loads(out or "[]")}
