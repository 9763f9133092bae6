"""A change rolled out through the host agents (MGMT-1, MGMT-2, MGMT-3).

The plan of the whole lab is cut by owner (`dataplane.ownership`): the
fabric's part (segments, routers, the controller's namespace) is the lab's
own and runs here; each host's part (its namespaces and its wires' far ends)
is sent to that host's agent, which runs it and then must confirm over its
management network. Order keeps the plan valid:

    1. the fabric's creations      (segments and router ports the hosts plug into)
    2. the hosts, in batches of `max_unavailable` (default half of them), each
       batch all or nothing; the first failing batch stops the rollout
    3. the fabric's deletions      (what no host uses any more)
    4. a read of the whole lab, compared with the desired state

A failure at any point undoes what ran, in reverse: the agents revert their
hosts (or have already, when they lost the controller: MGMT-2), the fabric
steps are undone here. A plan the cut cannot keep valid (the fabric deletes and
re-creates one object) is not rolled out: `realise()` returns None and the
caller applies it in one piece, agents armed as before.
"""

from __future__ import annotations

import contextlib
import math
import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ..dataplane import kcodec
from ..dataplane.apply import ApplyResult, rollback
from ..dataplane.base import Backend
from ..dataplane.kops import KernelOp
from ..dataplane.kstate import KernelState
from ..dataplane.ownership import partition
from ..dataplane.plan import describe, differences, phases
from ..errors import DataplaneError, InvalidArgument, VmknetError
from .client import ControllerClient
from .rollback import cut_off

MAX_UNAVAILABLE = "50%"  # kubernetes-nmstate's default: half the hosts at a time
VERIFY_ATTEMPTS, VERIFY_SETTLE = 5, 0.2


@dataclass
class Rollout:
    """What a rollout did: batches (hosts per batch), seconds per host, the apply result."""

    result: ApplyResult
    batches: list[list[str]]
    host_seconds: dict[str, float]


def parse_max_unavailable(spec: str) -> str:
    """`N` hosts or `P%` of them, as kubernetes-nmstate's maxUnavailable; refused otherwise."""
    text = spec.strip()
    number = text[:-1] if text.endswith("%") else text
    if not number.isdigit() or int(number) < 1 or (text.endswith("%") and int(number) > 100):
        raise InvalidArgument(f"--max-unavailable {spec!r}: give a number of hosts (1 or more) "
                              "or a percentage (1% to 100%)")
    return text


def batch_size(hosts: int, max_unavailable: str) -> int:
    """Hosts changed at once: `N`, or `P%` of them rounded down; at least one."""
    spec = parse_max_unavailable(max_unavailable)
    if spec.endswith("%"):
        return max(1, math.floor(hosts * int(spec[:-1]) / 100))
    return max(1, min(hosts, int(spec)))


def _object(op: KernelOp) -> tuple[str, str, object]:
    """The kernel object an op works on: (kind, namespace, name within it)."""
    for attr in ("link", "after", "before", "address", "route", "rule"):
        obj = getattr(op, attr, None)
        if obj is not None and hasattr(obj, "ns"):
            name = next((getattr(obj, a) for a in ("name", "ifname", "dst", "priority")
                         if hasattr(obj, a)), None)
            return type(obj).__name__, str(obj.ns), name
    kind = type(op).__name__.removeprefix("Create").removeprefix("Delete").removeprefix("Set")
    return kind, str(getattr(op, "ns", "")), getattr(op, "key", getattr(op, "ifname", None))


def _keys(ops: Sequence[KernelOp]) -> set[tuple[str, str, object]]:
    return {_object(op) for op in ops}


class AgentRollout:
    def __init__(self, backend: Backend, lab: str, prefix: str, hosts: Sequence[str],
                 connected: Sequence[str], timeout: float,
                 max_unavailable: str = MAX_UNAVAILABLE) -> None:
        self.backend, self.lab, self.prefix = backend, lab, prefix
        self.hosts, self.connected = list(hosts), set(connected)
        self.timeout, self.max_unavailable = timeout, max_unavailable
        self.client = ControllerClient(lab, timeout=timeout + 180)

    def realise(self, desired: KernelState) -> Rollout | None:
        current = self.backend.read(self.prefix)
        deletions, creations = phases(current, desired)
        ops = deletions + creations
        owners = partition(ops, self.lab, self.hosts, [current, desired])
        fabric = set(owners.get(None, []))
        per_host = {h: [ops[i] for i in idx] for h, idx in owners.items() if h is not None}
        if any(h not in self.connected for h in per_host):
            return None  # a host without a connected agent: nobody could run its part
        fabric_del = [ops[i] for i in range(len(deletions)) if i in fabric]
        fabric_new = [ops[i] for i in range(len(deletions), len(ops)) if i in fabric]
        if _keys(fabric_del) & _keys(fabric_new):
            return None  # the fabric replaces an object: only the plan's own order is valid
        size = batch_size(len(per_host), self.max_unavailable)
        names = sorted(per_host)
        batches = [names[i:i + size] for i in range(0, len(names), size)]
        report = Rollout(ApplyResult(ops=ops), batches, {})
        done_fabric: list[KernelOp] = []
        done_batches: list[tuple[str, list[str]]] = []
        try:
            self._run(fabric_new, done_fabric)
            for batch in batches:
                generation = secrets.token_hex(8)
                verdict = self._batch(generation, {h: per_host[h] for h in batch})
                done_batches.append((generation, batch))
                report.host_seconds.update(verdict.get("seconds", {}))
            self._run(fabric_del, done_fabric)
            self._verify(desired, report.result)
        except BaseException:
            for generation, batch in reversed(done_batches):
                self._quietly("rollout.revert", {"generation": generation, "hosts": batch})
            rollback(self.backend, done_fabric)
            raise
        for generation, batch in done_batches:
            self._quietly("rollout.release", {"generation": generation, "hosts": batch})
        return report

    def _run(self, ops: list[KernelOp], done: list[KernelOp]) -> None:
        for op in ops:
            try:
                self.backend.execute(op)
            except Exception as err:
                raise DataplaneError(f"fabric step failed ({describe(op)}): {err}; the change "
                                     "was rolled back", op=describe(op)) from err
            done.append(op)

    def _batch(self, generation: str, parts: dict[str, list[KernelOp]]) -> dict[str, Any]:
        verdict: dict[str, Any] = self.client.call("rollout.batch", {
            "generation": generation, "timeout": self.timeout,
            "ops": {h: [kcodec.encode(op) for op in ops] for h, ops in parts.items()}})
        if any(s != "confirmed" for s in verdict["hosts"].values()):
            raise cut_off(verdict, self.timeout, generation)
        return verdict

    def _verify(self, desired: KernelState, result: ApplyResult) -> None:
        diffs: list[str] = []
        for attempt in range(1, VERIFY_ATTEMPTS + 1):
            result.verify_attempts = attempt
            diffs = differences(self.backend.read(self.prefix), desired)
            if not diffs:
                return
            time.sleep(VERIFY_SETTLE)
        raise DataplaneError(f"the kernel does not show the desired state after the rollout "
                             f"({len(diffs)} differences, first: {diffs[0]}); rolled back",
                             differences=diffs[:50])

    def _quietly(self, method: str, params: dict[str, Any]) -> None:
        # An agent that is away reverts by itself (MGMT-2) or reconciles later.
        with contextlib.suppress(VmknetError):
            self.client.call(method, params)
