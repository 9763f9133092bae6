"""A lease per agent on an etcd store: `hosts/<host>/alive`, kept by the host's heartbeats.

The elected controller holds, for every host whose agent heartbeats, the key
`hosts/<host>/alive` bound to a lease of its own for that host. Heartbeats only
mark the host as seen (no etcd call on the heartbeat path); one keeper thread
refreshes, every `ttl / 3`, the leases of the hosts seen within the last round
and heartbeat interval (`RECENT`), grants one (and puts the key) for a host
without a live lease, and reads the alive keys back. A host whose agent stops
heartbeating is not refreshed any more: etcd deletes its key at most
HEARTBEAT_S + 2 * ttl / 3 + ttl after its last heartbeat (9.3 s at the default
5 s). Leases belong to no session,
so a newly elected controller adopts the keys it finds (`load`, before it
serves): it knows at once which hosts were alive, and their next heartbeats keep
the same leases. Agents never talk to etcd: they hold no credential for it.
"""

from __future__ import annotations

import sys
import threading
import time

from ..store.base import StoreUnavailable
from ..store.etcd_client import Address, Etcd
from ..store.hosts import HostStates

HEARTBEAT_S = 1.0  # an agent heartbeats once a second on each management link


class HostLeases:
    def __init__(self, address: Address, ttl: int) -> None:
        self.address, self.ttl = address, ttl
        self._etcd = Etcd(address)  # the keeper's (and `load`'s, before the keeper starts)
        self._lock = threading.Lock()
        self._seen: dict[str, float] = {}  # host -> time.monotonic() of its last heartbeat
        self._leases: dict[str, int] = {}  # host -> its lease id (the keeper's alone)
        self._alive: frozenset[str] = frozenset()

    def seen(self, host: str) -> None:
        """A heartbeat of `host` arrived (cheap: the heartbeat path calls it)."""
        now = time.monotonic()
        with self._lock:
            self._seen[host] = now

    def alive(self) -> frozenset[str]:
        """The hosts whose alive key etcd held at the last round."""
        return self._alive

    def load(self) -> frozenset[str]:
        """Adopt the alive keys (and their leases) found in etcd; the hosts."""
        found = {kv.key.split("/")[1]: kv.lease
                 for kv in self._etcd.range("hosts/", prefix=True, keys_only=True)
                 if kv.key.endswith("/alive") and kv.key.count("/") == 2 and kv.lease}
        self._leases.update(found)
        self._alive = frozenset(found)
        return self._alive

    def start(self, stop: threading.Event) -> threading.Thread:
        thread = threading.Thread(target=self._keep, args=(stop,), name="host-leases",
                                  daemon=True)
        thread.start()
        return thread

    def _keep(self, stop: threading.Event) -> None:
        period = max(self.ttl / 3, 0.5)
        while not stop.wait(period):
            # Seen within a round and a heartbeat: a heartbeat that arrived just after the
            # last round still counts, so a lease is never left to lapse between two beats.
            since = time.monotonic() - period - HEARTBEAT_S
            with self._lock:
                recent = {h for h, t in self._seen.items() if t >= since}
            try:
                self.round(recent)
            except StoreUnavailable as err:  # the leases' TTL decides meanwhile
                print(f"host leases: {err}", file=sys.stderr, flush=True)

    def round(self, seen: set[str]) -> None:
        """Keep the leases of the `seen` hosts (granting what is missing), then read back."""
        etcd = self._etcd
        for host in sorted(seen):
            lease = self._leases.get(host)
            if lease is not None and etcd.refresh(lease) > 0:
                continue
            lease = self._leases[host] = etcd.grant(self.ttl)
            etcd.put(HostStates.key(host, "alive"), "", lease=lease)
        self.load()
