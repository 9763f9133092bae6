"""Run an operation all-or-nothing: mutate a copy, check the touched hosts, return the copy."""

from __future__ import annotations

from collections.abc import Callable

from ..events import Event
from ..model import Datacenter
from ..rules.checks import ensure_valid

Operation = Callable[[Datacenter], list[Event]]


def changed_hosts(before: Datacenter, after: Datacenter) -> set[str]:
    """Hosts whose own objects changed, plus every member of a changed switch or cluster."""
    names = {n for n, h in after.hosts.items() if before.hosts.get(n) != h}
    for dvs_name, dvs in after.distributed_switches.items():
        old = before.distributed_switches.get(dvs_name)
        if old != dvs:
            names.update(dvs.hosts)
            names.update(old.hosts if old else {})
    return names & after.hosts.keys()


def execute(dc: Datacenter, operation: Operation) -> tuple[Datacenter, list[Event]]:
    """The new datacenter and the events, or raise the first rule the result breaks."""
    work = dc.model_copy(deep=True)
    events = operation(work)
    ensure_valid(work, changed_hosts(dc, work))
    return work, events
