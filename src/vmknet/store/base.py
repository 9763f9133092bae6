"""The store contract: what Inventory (and every other user) may rely on, whatever the backend.

Two backends keep it (docs/store.md): `SqliteStore`, one file, the embedded default;
`EtcdStore`, keys under a prefix of an etcd cluster, for many hosts and controllers.
tests/unit/test_store_contract.py runs one suite against both.

    version, dc = store.read()                # (0, Datacenter()) before the first save
    with store.transaction() as txn:          # writers queue here, one at a time
        txn.save(dc, events)                  # version + 1; an exception inside leaves nothing
    store.save_if(version, dc)                # ConcurrentModification if anyone saved since
    store.meta("lab"); store.events(limit=50)
"""

from __future__ import annotations

from collections.abc import Iterable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from ..errors import ConcurrentModification, VmknetError
from ..model import Datacenter

EMPTY = "{}"  # the canonical JSON of Datacenter(): an empty store holds exactly that


class StoreUnavailable(VmknetError):
    """The store's server cannot be reached or answered with an error (etcd down, say)."""

    default_code = "StoreUnavailable"


class EventLike(Protocol):
    """What an operation reports (vmknet.events.Event has it)."""

    @property
    def rule(self) -> str: ...
    @property
    def path(self) -> str: ...
    @property
    def message(self) -> str: ...


@dataclass(frozen=True)
class Event:
    """A recorded side effect; `time` (ISO 8601, UTC) and `version` are set when read back."""

    rule: str
    path: str
    message: str
    time: str | None = None
    version: int | None = None


def canonical_json(dc: Datacenter) -> str:
    """The stored form: the desired-state file's data as JSON (defaults left out, aliases)."""
    return dc.model_dump_json(by_alias=True, exclude_defaults=True)


class Transaction(Protocol):
    """One serialised read-modify-write, handed out by `StoreBackend.transaction`.

    `datacenter` is a fresh copy (safe to mutate); `version` is the stored
    version, bumped by the first `save` that changes something. Nothing is
    visible to others until the `with` block ends without an exception.
    """

    datacenter: Datacenter
    version: int

    def save(self, dc: Datacenter, events: Iterable[EventLike] = ()) -> int:
        """Write `dc` unless unchanged (then not even its events); the version now stored."""
        ...

    def record(self, events: Iterable[EventLike]) -> None:
        """Log events without changing the datacenter (a refused change, say)."""
        ...

    def meta(self, key: str) -> str | None:
        """`key`'s value as this transaction sees it (its own set_meta included)."""
        ...

    def set_meta(self, key: str, value: str | None) -> None:
        """Set `key`, or delete it with None; committed with the transaction."""
        ...


class StoreBackend(Protocol):
    @property
    def location(self) -> str:
        """What `--store` / VMKNET_STORE takes to reach this same store from another process."""
        ...

    @property
    def path(self) -> Path:
        """The local file behind the store. Labs bind a local file (their registry records
        it), so an etcd store raises InvalidArgument here rather than invent one."""
        ...

    def read(self) -> tuple[int, Datacenter]:
        """(version, datacenter); (0, Datacenter()) when nothing was ever saved."""
        ...

    def version(self) -> int:
        """The version alone, without parsing the datacenter (cheap: readers poll it)."""
        ...

    def transaction(self) -> AbstractContextManager[Transaction]:
        """Serialised with every other writer; an exception inside rolls everything back."""
        ...

    def save_if(self, expected_version: int, dc: Datacenter,
                events: Iterable[EventLike] = ()) -> int:
        """Save only if the store is still at `expected_version` (what a plan was made from)."""
        ...

    def meta(self, key: str) -> str | None:
        """The value stored under `key`, None when unset."""
        ...

    def events(self, limit: int = 50) -> list[Event]:
        """The last `limit` events, oldest first (as a log reads)."""
        ...


def save_if(store: StoreBackend, expected_version: int, dc: Datacenter,
            events: Iterable[EventLike] = ()) -> int:
    """`StoreBackend.save_if` in terms of `transaction`, the same for every backend."""
    with store.transaction() as txn:
        if txn.version != expected_version:
            raise ConcurrentModification(
                f"The inventory changed since the plan was made (version {expected_version}"
                f", now {txn.version}): run plan again",
                expected=expected_version, actual=txn.version,
            )
        return txn.save(dc, events)
