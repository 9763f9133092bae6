"""The SQLite file: connection settings and tables, nothing about datacenters.

    inventory(id=1, version, datacenter)   the canonical JSON of the one Datacenter
    events(id, time, version, rule, path, message)   side effects, oldest first
    meta(key, value)                     small facts about the store (the lab it is bound to)

WAL lets readers go on while one writer works; writers are serialised by
`BEGIN IMMEDIATE`, which takes the write lock before the read, so a
read-modify-write can never be based on a stale version.
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

BUSY_TIMEOUT_S = 30.0
SCHEMA_VERSION = 2  # PRAGMA user_version; 1 had no meta table (migrated in place, below)

TABLES = (
    "CREATE TABLE IF NOT EXISTS inventory ("
    " id INTEGER PRIMARY KEY CHECK (id = 1), version INTEGER NOT NULL, datacenter TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS events ("
    " id INTEGER PRIMARY KEY, time TEXT NOT NULL, version INTEGER NOT NULL,"
    " rule TEXT NOT NULL, path TEXT NOT NULL, message TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
)


def connect(path: Path) -> sqlite3.Connection:
    # isolation_level=None: no implicit BEGIN from the sqlite3 module; we say BEGIN IMMEDIATE.
    conn = sqlite3.connect(path, timeout=BUSY_TIMEOUT_S, isolation_level=None)
    conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
    return conn


def use_wal(conn: sqlite3.Connection) -> None:
    """Switch a new file to WAL (persistent in the file, a no-op read afterwards).

    Changing the journal mode needs an exclusive lock and SQLite may answer
    "database is locked" at once instead of waiting on the busy handler when
    several processes create the store together, so retry until the timeout.
    """
    deadline = time.monotonic() + BUSY_TIMEOUT_S
    while True:
        try:
            conn.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as err:
            if "locked" not in str(err) or time.monotonic() > deadline:
                raise
            time.sleep(0.01)


def create_tables(conn: sqlite3.Connection) -> None:
    """Inside the caller's write transaction, so a rolled-back first write leaves no tables.

    Every statement is CREATE ... IF NOT EXISTS, so the same code creates a new
    file and migrates an older one in place (version 1 only lacks `meta`).
    """
    if conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION:
        return  # the common case: nothing to write
    for statement in TABLES:
        conn.execute(statement)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")


def has_tables(conn: sqlite3.Connection) -> bool:
    return bool(conn.execute("PRAGMA user_version").fetchone()[0])


def has_meta(conn: sqlite3.Connection) -> bool:
    """A version-1 file read before any write has no meta table yet: it binds nothing."""
    return int(conn.execute("PRAGMA user_version").fetchone()[0]) >= 2
