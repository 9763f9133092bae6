"""apply(): the transactional engine over any Backend (nmstate's apply, with a kernel checkpoint).

read current -> plan -> execute step by step -> verify by re-reading (a few
tries: the kernel settles) -> post-check (e.g. the controller pings the
management adapters, REQ-5) -> done. When any step, the verification or the
post-check fails, the inverses of the completed steps run in reverse order,
so the kernel is left as it was, and the error says which step and why.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import NoReturn

from ..errors import DataplaneError, InvalidArgument, VmknetError
from .base import Backend
from .kops import KernelOp
from .kstate import KernelState
from .plan import describe, differences, plan

PostCheck = Callable[[], None]
BeforeExecute = Callable[["ApplyResult", KernelState], None]  # (the plan, the state read)
MAX_LISTED = 50  # differences listed in an error: enough to see the pattern


@dataclass
class ApplyResult:
    ops: list[KernelOp]
    seconds: dict[str, float] = field(default_factory=dict)  # read, plan, execute, verify, ...
    op_seconds: list[float] = field(default_factory=list)  # one per executed op
    verify_attempts: int = 0
    # Steps someone else already undid (a host's agent, MGMT-2): a rollback skips them.
    undone_elsewhere: set[int] = field(default_factory=set)

    @property
    def changed(self) -> bool:
        return bool(self.ops)


def apply(backend: Backend, desired: KernelState, prefix: str, *, verify: bool = True,
          post_check: PostCheck | None = None, attempts: int = 5,
          settle_seconds: float = 0.2,
          before_execute: BeforeExecute | None = None) -> ApplyResult:
    """Make everything below `prefix` exactly `desired`, or leave it as it was and raise."""
    _check_prefix(desired, prefix)
    result = ApplyResult(ops=[])
    clock = time.perf_counter()
    current = backend.read(prefix)
    result.seconds["read"] = _lap(clock)
    clock = time.perf_counter()
    result.ops = plan(current, desired)
    result.seconds["plan"] = _lap(clock)
    if before_execute is not None and result.ops:
        before_execute(result, current)  # may refuse: nothing has run yet
    clock = time.perf_counter()
    _execute(backend, result)
    result.seconds["execute"] = _lap(clock)
    try:
        # An empty plan was computed from a read made just now: reading again proves nothing.
        if verify and result.ops:
            clock = time.perf_counter()
            _verify(backend, desired, prefix, result, attempts, settle_seconds)
            result.seconds["verify"] = _lap(clock)
        if post_check is not None:
            clock = time.perf_counter()
            post_check()
            result.seconds["post_check"] = _lap(clock)
    except BaseException as err:
        done = [op for i, op in enumerate(result.ops) if i not in result.undone_elsewhere]
        _undo_and_raise(backend, done, err, prefix, current)
    return result


def destroy(backend: Backend, prefix: str, *, verify: bool = True) -> ApplyResult:
    """Remove every namespace, link and route below `prefix` (plan to an empty state)."""
    return apply(backend, KernelState(), prefix, verify=verify)


def rollback(backend: Backend, done: Sequence[KernelOp]) -> list[str]:
    """Run the inverses of `done` in reverse; keep going past failures and return them."""
    failures = []
    for op in reversed(done):
        inverse = op.inverse()
        try:
            backend.execute(inverse)
        except Exception as err:  # one stuck step must not stop the rest of the undo
            failures.append(f"{describe(inverse)}: {err}")
    return failures


def _lap(start: float) -> float:
    return time.perf_counter() - start


def _check_prefix(desired: KernelState, prefix: str) -> None:
    """vmknet touches only its own namespaces: never the root one, never another lab's."""
    if not prefix:
        raise InvalidArgument("apply needs a namespace prefix such as 'vmkl-lab.'")
    names = desired.namespaces | {k[0] for k in desired.links}
    names |= {a.ns for a in desired.addresses} | {r.ns for r in desired.routes}
    names |= {r.ns for r in desired.rules} | {k[0] for k in desired.sysctls}
    names |= set(desired.filters)
    outside = sorted(ns for ns in names if not ns.startswith(prefix))
    if outside:
        raise InvalidArgument(f"namespaces outside {prefix!r}: {', '.join(outside[:5])}",
                              prefix=prefix, namespaces=outside)


def _execute(backend: Backend, result: ApplyResult) -> None:
    for step, op in enumerate(result.ops):
        clock = time.perf_counter()
        try:
            backend.execute(op)
        except BaseException as err:
            failures = rollback(backend, result.ops[:step])
            if not isinstance(err, Exception):
                raise  # KeyboardInterrupt and friends: undone, then passed on
            raise DataplaneError(
                f"step {step + 1} of {len(result.ops)} failed ({describe(op)}): {err}; "
                f"the {step} steps before it were rolled back",
                step=step, op=describe(op), cause=_cause(err), rollback_failures=failures,
            ) from err
        result.op_seconds.append(_lap(clock))


def _verify(backend: Backend, desired: KernelState, prefix: str, result: ApplyResult,
            attempts: int, settle_seconds: float) -> None:
    diffs: list[str] = []
    for attempt in range(1, max(attempts, 1) + 1):
        result.verify_attempts = attempt
        diffs = differences(backend.read(prefix), desired)
        if not diffs:
            return
        time.sleep(settle_seconds)
    raise DataplaneError(
        f"the kernel does not show the desired state after apply ({len(diffs)} differences, "
        f"first: {diffs[0]}); rolled back",
        differences=diffs[:MAX_LISTED],
    )


def _undo_and_raise(backend: Backend, done: list[KernelOp], err: BaseException, prefix: str,
                    before: KernelState) -> NoReturn:
    failures = rollback(backend, done)
    residue = differences(backend.read(prefix), before)[:MAX_LISTED]
    if isinstance(err, VmknetError):
        # A post-check's own code (REQ-5, NoPath) stays what the user sees.
        err.details.update(rolled_back=True, rollback_failures=failures, residue=residue)
        raise err
    if not isinstance(err, Exception):
        raise err
    raise DataplaneError(f"post-check failed: {err}; the apply was rolled back",
                         cause=_cause(err), rollback_failures=failures,
                         residue=residue) from err


def _cause(err: BaseException) -> dict[str, object]:
    if isinstance(err, VmknetError):
        return err.to_dict()
    return {"type": type(err).__name__, "message": str(err)}


class FaultInjector:
    """A Backend wrapper that fails its `fail_at`-th execute (0-based), once: for tests."""

    def __init__(self, backend: Backend, fail_at: int) -> None:
        self.inner = backend
        self.fail_at = fail_at
        self.calls = 0
        self.name = f"fault-injector({backend.name})"

    def read(self, prefix: str) -> KernelState:
        return self.inner.read(prefix)

    def execute(self, op: KernelOp) -> None:
        call, self.calls = self.calls, self.calls + 1
        if call == self.fail_at:
            raise DataplaneError(f"injected fault at step {call}", errno="EIO", op=describe(op))
        self.inner.execute(op)
