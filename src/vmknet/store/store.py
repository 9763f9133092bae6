"""The embedded backend: one Datacenter, versioned, in a SQLite file (`Store` is its old name).

    store = SqliteStore(default_store_path())
    with store.transaction() as txn:          # writers queue here, one at a time
        dc = txn.datacenter                   # a fresh copy, safe to mutate
        dc.hosts["esx03"] = new_host()
        txn.save(dc, events)                  # version + 1; an exception rolls all back

`txn.set_meta("lab", "lab1")` / `store.meta("lab")` keep small facts beside the
datacenter (the lab a store is bound to); they do not change the version.

`save_if(version, dc, events)` is the optimistic variant for `plan` then
`apply`: it refuses if anyone saved since the plan read `version`.

Each call opens and closes its own connection: no connection outlives a
command or crosses a fork, and closing the last one checkpoints the WAL
so the .db file alone holds the inventory between commands.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator
from contextlib import closing, contextmanager
from datetime import UTC, datetime
from pathlib import Path

from ..errors import ConcurrentModification, InvalidArgument
from ..model import Datacenter
from . import base, schema
from .base import EMPTY, Event, EventLike, canonical_json

__all__ = ["EMPTY", "Event", "EventLike", "SqliteStore", "SqliteTransaction", "Store",
           "Transaction", "canonical_json"]


class SqliteTransaction:
    """One serialised read-modify-write; only `SqliteStore.transaction` makes these."""

    def __init__(self, conn: sqlite3.Connection, version: int, stored: str) -> None:
        self._conn = conn
        self._start = version
        self._stored = stored
        self.version = version
        self.datacenter = Datacenter.model_validate_json(stored)

    def save(self, dc: Datacenter, events: Iterable[EventLike] = ()) -> int:
        """Write `dc` (version + 1) unless it is unchanged; return the version now stored.

        An unchanged datacenter writes nothing, not even its events: a no-op
        command must leave the file byte-identical, and events only describe
        changes that happened.
        """
        text = canonical_json(dc)
        if text == self._stored:
            return self.version
        version = self._start + 1  # one bump per transaction, however often save is called
        self._conn.execute(
            "INSERT INTO inventory (id, version, datacenter) VALUES (1, ?, ?)"
            " ON CONFLICT (id) DO UPDATE SET version = excluded.version,"
            " datacenter = excluded.datacenter",
            (version, text),
        )
        now = datetime.now(UTC).isoformat(timespec="milliseconds")
        self._conn.executemany(
            "INSERT INTO events (time, version, rule, path, message) VALUES (?, ?, ?, ?, ?)",
            [(now, version, e.rule, e.path, e.message) for e in events],
        )
        self._stored, self.version = text, version
        return version

    def record(self, events: Iterable[EventLike]) -> None:
        """Log events without changing the datacenter (e.g. a change that was refused)."""
        now = datetime.now(UTC).isoformat(timespec="milliseconds")
        self._conn.executemany(
            "INSERT INTO events (time, version, rule, path, message) VALUES (?, ?, ?, ?, ?)",
            [(now, self.version, e.rule, e.path, e.message) for e in events],
        )

    def meta(self, key: str) -> str | None:
        return _meta(self._conn, key)

    def set_meta(self, key: str, value: str | None) -> None:
        """Set `key`, or delete it with None; part of this transaction like `save`."""
        if value is None:
            self._conn.execute("DELETE FROM meta WHERE key = ?", (key,))
        else:
            self._conn.execute(
                "INSERT INTO meta (key, value) VALUES (?, ?)"
                " ON CONFLICT (key) DO UPDATE SET value = excluded.value", (key, value))


class SqliteStore:
    def __init__(self, path: Path | str) -> None:
        # Nothing touches the disk here: reading a store that does not exist yet is fine.
        self.path = Path(path)

    @property
    def location(self) -> str:
        return str(self.path)

    def read(self) -> tuple[int, Datacenter]:
        """(version, datacenter); (0, Datacenter()) when nothing was ever saved."""
        if not self.path.exists():
            return 0, Datacenter()
        with self._sqlite_errors(), closing(schema.connect(self.path)) as conn:
            version, text = _current(conn)
        return version, Datacenter.model_validate_json(text)

    def version(self) -> int:
        if not self.path.exists():
            return 0
        with self._sqlite_errors(), closing(schema.connect(self.path)) as conn:
            if not schema.has_tables(conn):
                return 0
            row = conn.execute("SELECT version FROM inventory WHERE id = 1").fetchone()
        return int(row[0]) if row is not None else 0

    @contextmanager
    def transaction(self) -> Iterator[SqliteTransaction]:
        """Serialised with every other writer; an exception inside rolls everything back."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._sqlite_errors(), closing(schema.connect(self.path)) as conn:
            schema.use_wal(conn)
            # IMMEDIATE: take the write lock before reading, so the version we
            # read is still current when we write (no lost update between processes).
            conn.execute("BEGIN IMMEDIATE")
            try:
                schema.create_tables(conn)
                yield SqliteTransaction(conn, *_current(conn))
            except BaseException:
                if conn.in_transaction:  # SQLite may already have rolled back (disk full)
                    conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    def save_if(self, expected_version: int, dc: Datacenter,
                events: Iterable[EventLike] = ()) -> int:
        """Save only if the store is still at `expected_version` (what a plan was made from)."""
        return base.save_if(self, expected_version, dc, events)

    def meta(self, key: str) -> str | None:
        """The value stored under `key`, None when unset (or no store file yet)."""
        if not self.path.exists():
            return None
        with self._sqlite_errors(), closing(schema.connect(self.path)) as conn:
            return _meta(conn, key)

    def events(self, limit: int = 50) -> list[Event]:
        """The last `limit` events, oldest first (as a log reads)."""
        if not self.path.exists():
            return []
        with self._sqlite_errors(), closing(schema.connect(self.path)) as conn:
            if not schema.has_tables(conn):
                return []
            rows = conn.execute(
                "SELECT rule, path, message, time, version FROM events ORDER BY id DESC LIMIT ?",
                (limit,),
            ).fetchall()
        return [Event(*row) for row in reversed(rows)]

    @contextmanager
    def _sqlite_errors(self) -> Iterator[None]:
        """sqlite3 errors become vmknet errors here, once, at the seam."""
        try:
            yield
        except sqlite3.OperationalError as err:
            if "locked" in str(err) or "busy" in str(err):
                raise ConcurrentModification(
                    f"The inventory {self.path} stayed locked by another writer for "
                    f"{schema.BUSY_TIMEOUT_S:.0f} s: try again", path=str(self.path)) from err
            raise self._unusable(err) from err
        except sqlite3.DatabaseError as err:
            raise self._unusable(err) from err

    def _unusable(self, err: sqlite3.Error) -> InvalidArgument:
        return InvalidArgument(f"Cannot use {self.path} as a vmknet inventory ({err}): "
                               "check --store / VMKNET_STORE", path=str(self.path))


Store = SqliteStore  # the name every caller used before there were two backends
Transaction = SqliteTransaction


def _current(conn: sqlite3.Connection) -> tuple[int, str]:
    if not schema.has_tables(conn):
        return 0, EMPTY
    row = conn.execute("SELECT version, datacenter FROM inventory WHERE id = 1").fetchone()
    return (row[0], row[1]) if row is not None else (0, EMPTY)


def _meta(conn: sqlite3.Connection, key: str) -> str | None:
    if not schema.has_meta(conn):
        return None
    row = conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
    return str(row[0]) if row is not None else None
