"""Persistence of the inventory: a versioned Datacenter in an embedded SQLite file."""

from .paths import default_store_path
from .store import Event, EventLike, Store, Transaction, canonical_json

__all__ = ["Event", "EventLike", "Store", "Transaction", "canonical_json", "default_store_path"]
