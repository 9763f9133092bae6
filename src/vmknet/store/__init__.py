"""Persistence of the inventory: a versioned Datacenter, embedded (SQLite) or in etcd.

`open_store(location)` picks the backend; both keep the `StoreBackend` contract (base.py).
"""

from .base import Event, EventLike, StoreBackend, StoreUnavailable, Transaction, canonical_json
from .paths import default_store_location, default_store_path
from .select import open_store
from .store import SqliteStore, SqliteTransaction, Store

__all__ = ["Event", "EventLike", "SqliteStore", "SqliteTransaction", "Store", "StoreBackend",
           "StoreUnavailable", "Transaction", "canonical_json", "default_store_location",
           "default_store_path", "open_store"]
