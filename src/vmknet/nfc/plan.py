"""What to send: blocks, their data extents, resume planning, and the token bucket.

Pure functions (no sockets), so the unit tests can check the decisions that
make a copy sparse, resumable and rate-limited.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Protocol

from .files import BLOCK, block_count, clip


@dataclass(frozen=True, slots=True)
class BlockJob:
    index: int
    start: int
    end: int
    extents: tuple[tuple[int, int], ...]  # data inside [start, end); the rest is hole
    rewrite: bool  # the destination may hold other bytes here: zero the block first

    @property
    def data_bytes(self) -> int:
        return sum(length for _, length in self.extents)


def jobs(size: int, ranges: list[tuple[int, int]], indexes: list[int] | None = None,
         *, rewrite: bool = False, block: int = BLOCK) -> list[BlockJob]:
    """One job per block to send (all blocks with data, or the given `indexes`).

    A fresh destination file is all hole after SETSIZE, so blocks without data
    need no job at all: only the data crosses the wire.
    """
    wanted = range(block_count(size, block)) if indexes is None else indexes
    out = []
    for i in wanted:
        start, end = i * block, min((i + 1) * block, size)
        extents = tuple(clip(ranges, start, end))
        if extents or rewrite:
            out.append(BlockJob(i, start, end, extents, rewrite))
    return out


def differing(source: list[bytes], target: list[bytes]) -> list[int]:
    """Indexes of the blocks the target lacks or holds differently (resume, verify)."""
    return [i for i, digest in enumerate(source) if i >= len(target) or target[i] != digest]


class Clock(Protocol):
    def monotonic(self) -> float: ...
    def sleep(self, seconds: float) -> None: ...


class _RealClock:
    def monotonic(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)


class TokenBucket:
    """At most `rate` bytes per second on average, bursts up to `burst` (thread-safe).

    Shared by every stream of a copy, so the limit is the copy's, not per connection.
    """

    def __init__(self, rate: float, burst: float | None = None,
                 clock: Clock | None = None) -> None:
        if rate <= 0:
            raise ValueError("bandwidth limit must be positive")
        self.rate = float(rate)
        # A burst of 1/20 s keeps the rate smooth at the scale of a progress bar.
        self.burst = float(burst if burst is not None else max(rate / 20, 64 << 10))
        self._clock = clock or _RealClock()
        self._tokens = self.burst
        self._last = self._clock.monotonic()
        self._lock = threading.Lock()

    def _refill(self) -> None:
        now = self._clock.monotonic()
        self._tokens = min(self.burst, self._tokens + (now - self._last) * self.rate)
        self._last = now

    def delay(self, n: int) -> float:
        """Take `n` tokens (may go negative: a debt); seconds the caller must wait."""
        with self._lock:
            self._refill()
            self._tokens -= n
            return 0.0 if self._tokens >= 0 else -self._tokens / self.rate

    def consume(self, n: int) -> None:
        wait = self.delay(n)
        if wait > 0:
            self._clock.sleep(wait)
