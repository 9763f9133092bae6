"""Pre-copy decisions (pure): how dirty pages are cut into chunks, and when to stop iterating.

QEMU's rule, with the switchover's fixed costs: stop when the predicted downtime,
remaining dirty bytes / the bandwidth the last round measured + the fixed costs
(a round barrier on every stream, the device state's round trip on management,
measured after each round by the source's probe), is within the maximum
downtime. When that does not happen
within `max_rounds` (the guest dirties faster than the network sends), throttle
the guest, as vSphere's stun-during-page-send (SDPS) slows the vCPUs, halving its
rate each further round, and stun anyway after `throttle_rounds` more.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from ..vm.units import PAGE_SIZE

CHUNK_PAGES = 256  # 1 MiB: one sendall per chunk, a work unit the streams share
MAX_ROUNDS = 10
THROTTLE_ROUNDS = 6
THROTTLE_STEP = 0.5

Chunk = tuple[int, int]  # first page, page count


def chunks(idx: npt.NDArray[np.int64], max_pages: int = CHUNK_PAGES) -> list[Chunk]:
    """Sorted page indexes -> runs of contiguous pages, each at most `max_pages` long."""
    if len(idx) == 0:
        return []
    breaks = np.flatnonzero(np.diff(idx) != 1) + 1
    starts = np.concatenate(([0], breaks))
    ends = np.concatenate((breaks, [len(idx)]))
    out: list[Chunk] = []
    for s, e in zip(starts.tolist(), ends.tolist(), strict=True):
        first = int(idx[s])
        for off in range(0, e - s, max_pages):
            out.append((first + off, min(max_pages, e - s - off)))
    return out


def segments(nonzero: npt.NDArray[np.bool_], start: int) -> list[tuple[int, int, bool]]:
    """A chunk's pages -> (first, count, is_zero) runs, so zero runs go without data."""
    if nonzero.all():
        return [(start, len(nonzero), False)]
    edges = np.flatnonzero(np.diff(nonzero.astype(np.int8))) + 1
    bounds = [0, *edges.tolist(), len(nonzero)]
    return [(start + a, b - a, not bool(nonzero[a])) for a, b in itertools.pairwise(bounds)]


def predict(dirty_pages: int, rate: float, fixed: float = 0.0, per_page: float = 0.0) -> float:
    """Predicted downtime in s: the dirty pages at `rate` bytes/s, each also costing
    `per_page` s (the target hashes it before resuming), plus `fixed` s."""
    if dirty_pages == 0:
        return fixed
    if rate <= 0:
        return float("inf")
    return dirty_pages * (PAGE_SIZE / rate + per_page) + fixed


def fits(dirty_pages: int, rate: float, max_downtime: float, fixed: float = 0.0,
         per_page: float = 0.0) -> bool:
    """Would a stun now stay within `max_downtime` s (see `predict`)?"""
    return predict(dirty_pages, rate, fixed, per_page) <= max_downtime


MARGIN = 0.8  # the source stuns when the prediction is within 80 % of max_downtime: on the
# shared 2-core bench VM a switchover took up to 45 % longer than predicted (82 -> 119 ms at
# 50 MB/s dirty, docs/perf.md); the margin buys headroom for a slower last round


@dataclass
class Plan:
    max_downtime: float = 0.1  # s
    max_rounds: int = MAX_ROUNDS
    throttle_rounds: int = THROTTLE_ROUNDS
    margin: float = 1.0  # stun when predicted <= margin * max_downtime (the engine: MARGIN)

    def predict(self, dirty_pages: int, rate: float, fixed: float = 0.0,
                per_page: float = 0.0) -> float:
        return predict(dirty_pages, rate, fixed, per_page)

    def next_step(self, rnd: int, dirty_pages: int, rate: float, fixed: float = 0.0,
                  per_page: float = 0.0) -> str:
        """After round `rnd`: 'stun', 'continue', or 'throttle' (continue, guest slowed)."""
        if fits(dirty_pages, rate, self.max_downtime * self.margin, fixed, per_page):
            return "stun"
        if rnd < self.max_rounds:
            return "continue"
        if rnd < self.max_rounds + self.throttle_rounds:
            return "throttle"
        return "stun"  # forced: the report says the downtime goal was missed
