"""The controller's view of the inventory: parsed once per store version.

Every heartbeat asks which management adapters its host has; parsing the
whole datacenter for that costs ~50 ms at 1,000 hosts (docs/mgmt-bench.md).
The snapshot polls the store's version (one small query) at most every `ttl`
seconds and re-reads the datacenter only when it moved; `fresh=True` checks
the version now (joins and tickets, which must not act on a stale view).
"""

from __future__ import annotations

import threading
import time

from ..model import Datacenter
from ..store.base import StoreBackend

TTL = 0.5  # s a heartbeat may see an inventory that old


class InventorySnapshot:
    def __init__(self, store: StoreBackend, ttl: float = TTL) -> None:
        self.store, self.ttl = store, ttl
        self._lock = threading.Lock()
        self._version = -1
        self._dc = Datacenter()
        self._checked = 0.0

    def __call__(self, fresh: bool = False) -> Datacenter:
        return self.versioned(fresh)[1]

    def versioned(self, fresh: bool = False) -> tuple[int, Datacenter]:
        """The datacenter and the store version it was read at (an agent's generation)."""
        now = time.monotonic()
        with self._lock:
            if not fresh and now - self._checked < self.ttl:
                return self._version, self._dc
            self._checked = now
            version = self.store.version()
            if version != self._version:
                self._version, self._dc = self.store.read()
            return self._version, self._dc


class FixedInventory:
    """An inventory that does not change (the benchmark's 1,000 hosts in memory): its
    generation is a constant, where a plain callable would be digested on every heartbeat."""

    def __init__(self, dc: Datacenter, version: int = 1) -> None:
        self.dc, self.version = dc, version

    def __call__(self, fresh: bool = False) -> Datacenter:
        return self.dc

    def versioned(self, fresh: bool = False) -> tuple[int, Datacenter]:
        return self.version, self.dc
