"""Where the inventory lives when no `--store` is given."""

from __future__ import annotations

import os
from pathlib import Path


def default_store_path() -> Path:
    """`$VMKNET_STORE`, else `$XDG_DATA_HOME/vmknet/inventory.db` (~/.local/share by default)."""
    explicit = os.environ.get("VMKNET_STORE")
    if explicit:
        return Path(explicit).expanduser()
    data_home = os.environ.get("XDG_DATA_HOME", "")
    # The XDG spec says a relative (or empty) XDG_DATA_HOME is invalid and must be ignored.
    base = Path(data_home) if os.path.isabs(data_home) else Path.home() / ".local" / "share"
    return base / "vmknet" / "inventory.db"


def default_store_location() -> str:
    """Like `default_store_path`, but an `etcd://...` VMKNET_STORE stays a URL (a Path would
    fold its `//`)."""
    explicit = os.environ.get("VMKNET_STORE", "")
    if is_etcd(explicit):
        return explicit
    return str(default_store_path())


def is_etcd(location: object) -> bool:
    """An etcd store's address. A click.Path/pathlib.Path has already folded "etcd://" into
    "etcd:/", so both spellings count (a relative file named "etcd:..." would need "./")."""
    return str(location).startswith("etcd:/")
