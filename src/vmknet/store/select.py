"""`--store` / VMKNET_STORE to a backend: `etcd://host[:port][/prefix]` is etcd, else a file."""

from __future__ import annotations

from pathlib import Path

from .base import StoreBackend
from .paths import default_store_location, is_etcd
from .store import SqliteStore


def open_store(location: str | Path | None = None) -> StoreBackend:
    """The store at `location` (default: VMKNET_STORE, else the per-user SQLite file)."""
    where = default_store_location() if location is None else location
    if is_etcd(where):
        from .etcd import EtcdStore  # the HTTP client loads only when etcd is asked for

        return EtcdStore(str(where))
    return SqliteStore(Path(where).expanduser())
