"""Where the inventory lives when no `--store PATH` is given."""

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
