"""Who is the primary, and which datastores a host heartbeats on (pure).

vSphere's rule, kept: the candidate connected to the most datastores wins;
among those with as many, the one with the lexically highest managed object
id (vmknet: the host's name, which plays that part). A primary stays while it
is heard: a better host that joins later does not take over (FDM elects only
when there is no primary), so a host that hears a primary follows it; when it
hears two (two partitions healed), the better one stays and the other steps
down. Hosts that hear each other but no primary elect among themselves: that
is how each side of a partition gets its own.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class Candidate:
    host: str
    datastores: int
    claims_primary: bool = False


def rank(c: Candidate) -> tuple[int, str]:
    return (c.datastores, c.host)


def elect(candidates: Iterable[Candidate]) -> str | None:
    """The primary among the hosts one host hears (itself included)."""
    pool = list(candidates)
    if not pool:
        return None
    claiming = [c for c in pool if c.claims_primary]
    return max(claiming or pool, key=rank).host


def heartbeat_datastores(mounts: Mapping[str, Iterable[str]], host: str, count: int
                         ) -> list[str]:
    """The `count` datastores of `host` that most members mount (then by name): vSphere
    prefers datastores every host can see, so the primary can read every host's file."""
    shared: dict[str, int] = {}
    for stores in mounts.values():
        for ds in set(stores):
            shared[ds] = shared.get(ds, 0) + 1
    mine = sorted(set(mounts.get(host, ())), key=lambda ds: (-shared[ds], ds))
    return mine[:count]
