"""The distributed backend: the same versioned Datacenter, as keys under a prefix in etcd.

    <prefix>/version        decimal, the store's version (absent: 0)
    <prefix>/datacenter     the canonical JSON, byte for byte what SqliteStore keeps
    <prefix>/meta/<key>     small facts (the lab a store is bound to)
    <prefix>/events/<seq>   one JSON event per key, seq zero-padded so keys sort in order
    <prefix>/events-seq     the last seq used
    <prefix>/lock           the writers' mutex, bound to the holder's lease

A transaction takes the lock (create-if-absent, bound to a lease kept alive
while the block runs) and reads the snapshot in the same etcd txn. Writes
are buffered; the block's end commits them all in one etcd txn guarded by
"the lock key is still the one I created" (no one else can have written), and
releases the lock in that same txn. An exception inside sends nothing and
revokes the lease, which drops the lock: nothing is left. A holder that dies
loses the lock when its lease expires (LOCK_TTL_S).

Why a lock rather than optimistic retries: Inventory realises a change in the
lab's kernel inside the transaction; a retry would run that twice.
"""

from __future__ import annotations

import json
import random
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, suppress
from datetime import UTC, datetime
from pathlib import Path

from ..errors import ConcurrentModification, InvalidArgument
from ..model import Datacenter
from . import base
from .base import EMPTY, Event, EventLike, StoreUnavailable, canonical_json
from .coordination import Lease
from .etcd_client import Address, Etcd, KeyValue, Op, parse

VERSION, DATACENTER, LOCK, EVENT_SEQ = "version", "datacenter", "lock", "events-seq"
META, EVENTS = "meta/", "events/"
LOCK_TTL_S = 10  # a dead writer blocks the others at most this long
LOCK_WAIT_S = 30.0  # as SQLite's busy timeout: then ConcurrentModification
EVENTS_KEPT = 10_000  # older events are deleted by the commit that passes the bound
SEQ_DIGITS = 20


def _event_key(seq: int) -> str:
    return f"{EVENTS}{seq:0{SEQ_DIGITS}d}"


class EtcdTransaction:
    """One serialised read-modify-write; only `EtcdStore.transaction` makes these."""

    def __init__(self, etcd: Etcd, version: int, stored: str) -> None:
        self._etcd = etcd
        self._start = version
        self._stored = stored
        self._changed: str | None = None  # the datacenter to write, if any
        self._events: list[dict[str, object]] = []
        self._meta: dict[str, str | None] = {}
        self.version = version
        self.datacenter = Datacenter.model_validate_json(stored)

    def save(self, dc: Datacenter, events: Iterable[EventLike] = ()) -> int:
        text = canonical_json(dc)
        if text == self._stored:
            return self.version  # unchanged: nothing written, not even its events
        self.version = self._start + 1  # one bump per transaction, however often saved
        self._stored = self._changed = text
        self._log(events)
        return self.version

    def record(self, events: Iterable[EventLike]) -> None:
        self._log(events)

    def meta(self, key: str) -> str | None:
        if key in self._meta:
            return self._meta[key]
        kv = self._etcd.get(META + key)
        return kv.value if kv is not None else None

    def set_meta(self, key: str, value: str | None) -> None:
        self._meta[key] = value

    def writes(self, seq: int, kept: int) -> list[Op]:
        """The etcd requests that commit this transaction, events numbered after `seq`."""
        etcd, ops = self._etcd, []
        if self._changed is not None:
            ops += [etcd.put_op(VERSION, str(self.version)),
                    etcd.put_op(DATACENTER, self._changed)]
        for key, value in self._meta.items():
            ops.append(etcd.delete_op(META + key) if value is None
                       else etcd.put_op(META + key, value))
        if self._events:
            last = seq + len(self._events)
            ops += [etcd.put_op(_event_key(seq + 1 + i), json.dumps(e))
                    for i, e in enumerate(self._events)]
            ops.append(etcd.put_op(EVENT_SEQ, str(last)))
            if last > kept:  # the bound: drop what fell out of the last `kept`
                ops.append(etcd.delete_op(_event_key(0), end=_event_key(last - kept + 1)))
        return ops

    def _log(self, events: Iterable[EventLike]) -> None:
        now = datetime.now(UTC).isoformat(timespec="milliseconds")
        self._events += [{"time": now, "version": self.version, "rule": e.rule,
                          "path": e.path, "message": e.message} for e in events]


class EtcdStore:
    def __init__(self, location: str | Address, *, events_kept: int = EVENTS_KEPT,
                 lock_ttl: int = LOCK_TTL_S, lock_wait: float = LOCK_WAIT_S) -> None:
        # Nothing is sent here: opening a store whose etcd is down fails at first use.
        self.address = location if isinstance(location, Address) else parse(location)
        self._local = threading.local()
        self.events_kept = events_kept
        self.lock_ttl = lock_ttl
        self.lock_wait = lock_wait

    @property
    def location(self) -> str:
        return self.address.url

    @property
    def etcd(self) -> Etcd:
        """This thread's client: one store may serve many threads (a REST server's pool),
        and an HTTP session is not to be shared between them."""
        client: Etcd | None = getattr(self._local, "etcd", None)
        if client is None:
            client = self._local.etcd = Etcd(self.address)
        return client

    @property
    def path(self) -> Path:
        raise InvalidArgument(f"The store {self.location} is in etcd, not a local file: "
                              "this needs an SQLite store (--store PATH)")

    def read(self) -> tuple[int, Datacenter]:
        etcd = self.etcd
        _, (version, dc), _ = etcd.txn([], [etcd.range_op(VERSION), etcd.range_op(DATACENTER)])
        return _version(version), Datacenter.model_validate_json(_text(dc))

    def version(self) -> int:
        etcd = self.etcd
        _, (version,), _ = etcd.txn([], [etcd.range_op(VERSION)])
        return _version(version)

    @contextmanager
    def transaction(self) -> Iterator[EtcdTransaction]:
        lease = Lease(self.address, self.lock_ttl).start()
        try:
            held, version, snapshot, seq = self._lock(lease)
            txn = EtcdTransaction(self.etcd, version, snapshot)
            yield txn
            self._commit(txn, held, seq)
        finally:
            # Drops the lock if the commit did not (an exception inside); should etcd be
            # away, the lease expires by itself within lock_ttl.
            with suppress(StoreUnavailable):
                lease.revoke()

    def save_if(self, expected_version: int, dc: Datacenter,
                events: Iterable[EventLike] = ()) -> int:
        return base.save_if(self, expected_version, dc, events)

    def meta(self, key: str) -> str | None:
        kv = self.etcd.get(META + key)
        return kv.value if kv is not None else None

    def events(self, limit: int = 50) -> list[Event]:
        if limit <= 0:
            return []
        newest = self.etcd.range(EVENTS, prefix=True, limit=limit, descending=True)
        out = []
        for kv in reversed(newest):
            e = json.loads(kv.value)
            out.append(Event(e["rule"], e["path"], e["message"], e["time"], e["version"]))
        return out

    def _lock(self, lease: Lease) -> tuple[int, int, str, int]:
        """Take the lock and read the snapshot in one etcd txn: (lock revision, version,
        datacenter text, last event seq)."""
        etcd = self.etcd
        deadline = time.monotonic() + self.lock_wait
        pause = 0.002
        while True:
            won, found, revision = etcd.txn(
                [etcd.compare(LOCK, "CREATE", 0)],
                [etcd.put_op(LOCK, str(lease.id), lease.id), etcd.range_op(VERSION),
                 etcd.range_op(DATACENTER), etcd.range_op(EVENT_SEQ)])
            if won:
                version, dc, seq = found
                return revision, _version(version), _text(dc), _version(seq)
            if time.monotonic() > deadline:
                raise ConcurrentModification(
                    f"The inventory {self.location} stayed locked by another writer for "
                    f"{self.lock_wait:.0f} s: try again", url=self.location)
            # Jittered, growing pauses: waiting writers do not all retry in step.
            time.sleep(pause * random.uniform(0.5, 1.5))
            pause = min(pause * 2, 0.05)

    def _commit(self, txn: EtcdTransaction, held: int, seq: int) -> None:
        etcd = self.etcd
        writes = txn.writes(seq, self.events_kept)
        if not writes:
            return  # nothing changed: the lease's revoke releases the lock
        ok, _, _ = etcd.txn([etcd.compare(LOCK, "CREATE", held)],
                            [*writes, etcd.delete_op(LOCK)])
        if not ok:
            raise ConcurrentModification(
                f"Lost the lock on {self.location} before committing (its lease expired: "
                "etcd unreachable or this process paused too long); nothing was written",
                url=self.location)


def _version(kvs: list[KeyValue]) -> int:
    return int(kvs[0].value) if kvs else 0


def _text(kvs: list[KeyValue]) -> str:
    return kvs[0].value if kvs else EMPTY
