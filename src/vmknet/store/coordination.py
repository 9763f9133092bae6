"""Leases and leader election on etcd: liveness of agents, one active controller.

    with Lease(address, ttl=5) as lease:           # granted, kept alive by a thread
        lease.attach("hosts/esx01/alive", "...")   # gone within ttl once the agent dies

    election = Election(address, "ctl-a", ttl=5)
    election.campaign(timeout=None)                # blocks until this candidate leads
    election.is_leader(); election.leader(); election.resign()

Election is the simple etcd recipe: the leader key is created only if absent
(compare create_revision == 0) and bound to the candidate's lease. When the
leader dies its keepalives stop, etcd expires the lease and deletes the key,
and the next candidate's create succeeds: a new leader within one TTL (plus
the poll interval). A leader that was paused longer than its TTL has lost the
key: `is_leader` reads etcd, it does not trust a local flag.
"""

from __future__ import annotations

import threading
import time
from types import TracebackType

from .base import StoreUnavailable
from .etcd_client import Address, Etcd

LEADER_KEY = "controller/leader"
POLL_S = 0.1  # how often a waiting candidate retries; small against any useful TTL


class Lease:
    """An etcd lease, kept alive by a background thread between `start` and `revoke`."""

    def __init__(self, address: Address, ttl: int = 5) -> None:
        self.address = address
        self.ttl = ttl
        self._etcd = Etcd(address)
        sent = time.monotonic()
        self.id = self._etcd.grant(ttl)
        # Until when (time.monotonic) etcd keeps the lease at the least: counted from before
        # the request that set it, so never later than etcd's own expiry (which a rounded-up
        # TTL only moves later). A holder that must not outlive its lease (the controller:
        # fencing) stops before this.
        self.deadline = sent + ttl
        self._stop = threading.Event()
        self.expired = threading.Event()  # set once a keepalive finds the lease gone
        self._thread: threading.Thread | None = None

    def keepalive(self) -> int:
        """One keepalive now; the remaining TTL, -1 (and `expired` set) if it is gone."""
        return self._refresh(self._etcd)

    def _refresh(self, etcd: Etcd) -> int:
        sent = time.monotonic()
        remaining = etcd.refresh(self.id)
        if remaining < 0:
            self.expired.set()
        else:
            self.deadline = max(self.deadline, sent + remaining)
        return remaining

    def start(self) -> Lease:
        if self._thread is None:
            self._thread = threading.Thread(target=self._keep, name=f"lease-{self.id:x}",
                                            daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        """Stop the keepalives (the lease then expires within its TTL); keeps the lease."""
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join()
        self._thread = None

    def revoke(self) -> None:
        """End the lease now: every key attached to it is deleted."""
        self.stop()
        self._etcd.revoke(self.id)
        self.expired.set()

    def attach(self, name: str, value: str) -> int:
        """Put `name` (relative to the prefix) bound to this lease; the revision."""
        return self._etcd.put(name, value, lease=self.id)

    def _keep(self) -> None:
        # Its own client (an HTTP session is not to be shared between threads), made only
        # when a first keepalive is due: most store transactions end well before that.
        etcd: Etcd | None = None
        interval = max(self.ttl / 3, 0.2)
        while not self._stop.wait(interval):
            try:
                etcd = etcd or Etcd(self.address)
                if self._refresh(etcd) < 0:
                    return
            except StoreUnavailable:
                continue  # etcd away for a moment: try again; the TTL decides

    def __enter__(self) -> Lease:
        return self.start()

    def __exit__(self, kind: type[BaseException] | None, err: BaseException | None,
                 tb: TracebackType | None) -> None:
        try:
            self.revoke()
        except StoreUnavailable:
            if kind is None:
                raise  # with an exception in flight, that one matters; the TTL cleans up


class Election:
    """Campaign for `key` (default controller/leader) with a lease of `ttl` seconds."""

    def __init__(self, address: Address, candidate: str, ttl: int = 5,
                 key: str = LEADER_KEY) -> None:
        self.address = address
        self.candidate = candidate
        self.ttl = ttl
        self.key = key
        self._etcd = Etcd(address)
        self._lease: Lease | None = None

    @property
    def lease(self) -> Lease | None:
        """The lease the candidate campaigns with (None before the first attempt)."""
        return self._lease

    def try_lead(self) -> bool:
        """One attempt: True if this candidate leads now (already, or from this attempt)."""
        if self.is_leader():
            return True
        if self._lease is None or self._lease.expired.is_set():
            self._lease = Lease(self.address, self.ttl).start()
        etcd = self._etcd
        won, _, _ = etcd.txn([etcd.compare(self.key, "CREATE", 0)],
                             [etcd.put_op(self.key, self.candidate, self._lease.id)])
        return won

    def campaign(self, timeout: float | None = None) -> bool:
        """Wait until this candidate leads (True) or `timeout` seconds pass (False)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self.try_lead():
            if deadline is not None and time.monotonic() >= deadline:
                return False
            time.sleep(POLL_S)
        return True

    def leader(self) -> str | None:
        """The current leader's candidate name, None between leaders."""
        kv = self._etcd.get(self.key)
        return kv.value if kv is not None else None

    def is_leader(self) -> bool:
        if self._lease is None:
            return False
        kv = self._etcd.get(self.key)
        return kv is not None and kv.value == self.candidate and kv.lease == self._lease.id

    def resign(self) -> None:
        """Give up leadership (if held) at once, so the next candidate need not wait a TTL."""
        if self._lease is not None:
            lease, self._lease = self._lease, None
            lease.revoke()  # deletes the leader key if it is ours, nothing else
