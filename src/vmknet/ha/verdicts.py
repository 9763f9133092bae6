"""FDM's host states from what one host observes (pure, so unit tests drive the clock).

For each peer the observer keeps when it last heard it on each link (a link
is a pair of management addresses, its and ours) and when the peer's
datastore heartbeat last moved. The verdict, as vSphere HA's:

- `live`: heard on at least one link within FAIL_AFTER (one lost NIC or
  adapter is no verdict at all: its other links still carry heartbeats);
- `isolated`: not heard, its datastore heartbeat moved twice since its last
  network heartbeat (once could be the last write of a host that just died)
  and says it declared itself isolated (it reached none of its isolation
  addresses);
- `partitioned`: the same, not isolated: it lives on the other side of a cut;
- `failed`: not heard, no datastore heartbeat moved within DS_DEAD, and no
  answer to a ping of its management addresses;
- `unreachable`: not heard, no datastore heartbeat, but its management
  addresses answer ping (vSphere: "agent unreachable"; no restart, since its
  VMs may run).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

FAIL_AFTER = 3.0  # s without a network heartbeat: the peer is suspect (aim: a verdict in 5 s)
DS_DEAD = 2.5  # s without a datastore heartbeat moving (it moves every second)
LIVE, ISOLATED, PARTITIONED, FAILED, UNREACHABLE, SUSPECT = (
    "live", "isolated", "partitioned", "failed", "unreachable", "suspect")


@dataclass(frozen=True)
class Observed:
    links: Mapping[tuple[str, str], float]  # (their address, our address) -> last heard
    datastore_moves: tuple[float, ...]  # when we saw its datastore heartbeat change, lately
    datastore_isolated: bool  # what its datastore heartbeat says of itself
    pinged: bool | None  # None: not pinged (yet)
    since: float  # when we started watching it (a fresh agent waits before judging)


def network_live(obs: Observed, now: float) -> bool:
    return any(now - at <= FAIL_AFTER for at in obs.links.values())


def datastore_recent(obs: Observed, now: float) -> bool:
    return any(now - m <= DS_DEAD for m in obs.datastore_moves)


def verdict(obs: Observed, now: float) -> str:
    if network_live(obs, now):
        return LIVE
    if now - obs.since <= FAIL_AFTER:
        return SUSPECT  # just started: give its heartbeats a chance first
    heard = max(obs.links.values(), default=obs.since)
    if datastore_recent(obs, now):
        if sum(1 for m in obs.datastore_moves if m > heard) >= 2:
            return ISOLATED if obs.datastore_isolated else PARTITIONED
        return SUSPECT  # moving still: alive, or the last write of a host that just died
    if obs.pinged is None:
        return SUSPECT
    return UNREACHABLE if obs.pinged else FAILED


def live_links(obs: Observed, now: float) -> list[tuple[str, str]]:
    return sorted(k for k, at in obs.links.items() if now - at <= FAIL_AFTER)
