"""A lease per agent on an etcd store: `hosts/<host>/alive`, kept by the host's heartbeats.

The elected controller holds, for every host whose agent heartbeats, the key
`hosts/<host>/alive` bound to a lease of its own for that host. Heartbeats only
mark the host as seen (no etcd call on the heartbeat path); one keeper thread
refreshes, every `ttl / 2`, the leases of the hosts seen since its last round,
grants one (and puts the key) for a host without a live lease, and reads the
alive keys back. A host whose agent stops heartbeating is not refreshed: etcd
deletes its key within the TTL (plus one round). Leases belong to no session,
so a newly elected controller adopts the keys it finds (`load`, before it
serves): it knows at once which hosts were alive, and their next heartbeats keep
the same leases. Agents never talk to etcd: they hold no credential for it.
"""

from __future__ import annotations

import sys
import threading

from ..store.base import StoreUnavailable
from ..store.etcd_client import Address, Etcd
from ..store.hosts import HostStates


class HostLeases:
    def __init__(self, address: Address, ttl: int) -> None:
        self.address, self.ttl = address, ttl
        self._etcd = Etcd(address)  # the keeper's (and `load`'s, before the keeper starts)
        self._lock = threading.Lock()
        self._seen: set[str] = set()  # heartbeats since the last round
        self._leases: dict[str, int] = {}  # host -> its lease id (the keeper's alone)
        self._alive: frozenset[str] = frozenset()

    def seen(self, host: str) -> None:
        """A heartbeat of `host` arrived (cheap: the heartbeat path calls it)."""
        with self._lock:
            self._seen.add(host)

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
        while not stop.wait(self.ttl / 2):
            with self._lock:
                seen, self._seen = self._seen, set()
            try:
                self.round(seen)
            except StoreUnavailable as err:
                with self._lock:
                    self._seen |= seen  # next round; the leases' TTL decides meanwhile
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
