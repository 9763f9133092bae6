"""Where an object's components go (pure): vSAN's placement, small.

FTT=0: one replica, on the live member with the most free capacity. FTT=1
(VSAN-2): two replicas on two different live members (the two with the most
free capacity) and a witness component on a third live member, so either
replica plus the witness is a majority (2 of 3 votes); a two-host cluster puts
the witness on its witness host (VSAN-3). A rebuild after the repair delay
(`rebuild_host`) goes to a live member that holds no component of the object.
Ties break by host name, so the same inputs always give the same placement.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass

from ..errors import InvalidArgument, ResourceInUse

FTTS = (0, 1)


@dataclass(frozen=True)
class Placed:
    replicas: tuple[str, ...]
    witness: str | None


def _by_free(members: Collection[str], free: Mapping[str, int], alive: Collection[str],
             size: int, exclude: Collection[str] = ()) -> list[str]:
    fits = [h for h in members if h in alive and h not in exclude and free.get(h, 0) >= size]
    return sorted(fits, key=lambda h: (-free.get(h, 0), h))


def place(ftt: int, size: int, members: Collection[str], free: Mapping[str, int],
          alive: Collection[str], witness_host: str | None = None) -> Placed:
    if ftt not in FTTS:
        raise InvalidArgument(f"FTT={ftt}: vmknet places FTT=0 or FTT=1 (RAID-1)")
    if size <= 0:
        raise InvalidArgument("An object's size must be positive")
    hosts = _by_free(members, free, alive, size)
    if ftt == 0:
        if not hosts:
            raise ResourceInUse(f"No live vSAN member has {size} bytes free")
        return Placed((hosts[0],), None)
    if len(hosts) < 2:
        raise ResourceInUse(f"FTT=1 needs two live members with {size} bytes free each "
                            f"(have {len(hosts)})")
    replicas = (hosts[0], hosts[1])
    third = [h for h in sorted(members) if h in alive and h not in replicas]
    if third:
        return Placed(replicas, third[0])
    if witness_host is not None and witness_host in alive:
        return Placed(replicas, witness_host)
    raise ResourceInUse("FTT=1 needs a third live host for the witness component "
                        "(a third member, or the cluster's witness host)")


def rebuild_host(size: int, members: Collection[str], free: Mapping[str, int],
                 alive: Collection[str], holding: Collection[str]) -> str | None:
    """A live member without a component of the object and with room, or None."""
    hosts = _by_free(members, free, alive, size, exclude=holding)
    return hosts[0] if hosts else None
