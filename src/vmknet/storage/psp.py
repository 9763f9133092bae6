"""Path selection policies (pure): which of a device's paths carries the next I/O (STO-4).

ESXi's Native Multipathing asks the device's PSP for a path per I/O:

- VMW_PSP_RR: rotate over the live paths, `iops` I/Os on each before the next;
- VMW_PSP_MRU: the path in use stays in use until it dies; then another live
  one, which stays even when the first comes back (most recently used);
- VMW_PSP_FIXED: the preferred path while it lives; another while it is
  dead, and back to the preferred one as soon as it lives again.

    sel = Selector("VMW_PSP_RR", 2, iops=10)
    i = sel.choose([True, True])   # the index of the path for this I/O, or None: all dead
"""

from __future__ import annotations

from collections.abc import Sequence

from ..model.storage import DEFAULT_RR_IOPS, Psp


class Selector:
    """The PSP state of one device over `count` paths, numbered in runtime-name order."""

    def __init__(self, policy: Psp, count: int, iops: int = DEFAULT_RR_IOPS,
                 preferred: int = 0) -> None:
        self.policy, self.count, self.iops = policy, count, max(1, iops)
        self.preferred = preferred if 0 <= preferred < count else 0
        self.current = self.preferred
        self.issued = 0  # I/Os on `current` since RR last switched

    def _next_alive(self, start: int, alive: Sequence[bool]) -> int | None:
        for step in range(self.count):
            i = (start + step) % self.count
            if alive[i]:
                return i
        return None

    def choose(self, alive: Sequence[bool]) -> int | None:
        """The path for the next I/O given which paths live now (None: all paths down)."""
        if len(alive) != self.count:
            raise ValueError(f"{len(alive)} path states for {self.count} paths")
        if self.policy == "VMW_PSP_FIXED" and alive[self.preferred]:
            self.current = self.preferred
        elif self.policy == "VMW_PSP_RR" and self.issued >= self.iops:
            self.current, self.issued = (self.current + 1) % self.count, 0
        if not alive[self.current]:
            found = self._next_alive(self.current + 1, alive)
            if found is None:
                return None
            self.current, self.issued = found, 0
        self.issued += 1
        return self.current

    def working(self, alive: Sequence[bool]) -> list[int]:
        """The paths I/O may use now, as ESXi's "Working Paths": every live one for RR, else
        the one in use (what `choose` would pick, without counting an I/O)."""
        if self.policy == "VMW_PSP_RR":
            return [i for i in range(self.count) if alive[i]]
        if self.policy == "VMW_PSP_FIXED" and alive[self.preferred]:
            return [self.preferred]
        found = self._next_alive(self.current, alive)
        return [] if found is None else [found]
