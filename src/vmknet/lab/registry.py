"""Which store brought each lab up: /run/vmknet/labs/<name>.json.

The kernel holds the namespaces, the store holds the binding; this small file
joins the two for `vmknet lab list` and lets `lab down --name` unbind a store
it was not given. It lives on /run (tmpfs), so it vanishes at reboot together
with the namespaces it describes; `lab down` removes it.
"""

from __future__ import annotations

import contextlib
import json
import os
from datetime import UTC, datetime
from pathlib import Path

from ..errors import InvalidArgument

RUN_DIR_ENV = "VMKNET_RUN_DIR"


def run_dir() -> Path:
    return Path(os.environ.get(RUN_DIR_ENV) or "/run/vmknet") / "labs"


def record(name: str, store: Path | str) -> None:
    """`store`: a file (a Path), or an etcd store's address (a str, kept as it is)."""
    folder = run_dir()
    folder.mkdir(parents=True, exist_ok=True)
    data = {"store": str(store.resolve()) if isinstance(store, Path) else store, "pid": os.getpid(),
            "since": datetime.now(UTC).isoformat(timespec="seconds")}
    tmp = folder / f".{name}.json.tmp"
    tmp.write_text(json.dumps(data), encoding="utf-8")
    tmp.replace(folder / f"{name}.json")  # atomic: a reader never sees half a file


def store_of(name: str) -> Path | str | None:
    try:
        data = json.loads((run_dir() / f"{name}.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    store = data.get("store") if isinstance(data, dict) else None
    if not isinstance(store, str):
        return None
    # An etcd address stays a str: a Path would fold its "//" (store.paths.is_etcd).
    return store if store.startswith("etcd:/") else Path(store)


def names() -> list[str]:
    folder = run_dir()
    if not folder.is_dir():
        return []
    return sorted(p.name.removesuffix(".json") for p in folder.glob("*.json"))


def forget(name: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        (run_dir() / f"{name}.json").unlink()


def host_dir(lab: str, host: str) -> Path:
    """A host's own state in a lab (its agent's credential, its ticket book)."""
    base = run_dir() / lab / "hosts"
    path = base / host
    if path.resolve().parent != base.resolve():
        # SEC-5: names are checked where they enter; this is the last line of defence
        raise InvalidArgument(f"Host name {host!r} leaves {base}", code="SEC-5")
    return path


def tickets_dir(lab: str, host: str) -> Path:
    return host_dir(lab, host) / "tickets"


def security_log(lab: str) -> Path:
    return run_dir() / lab / "security.jsonl"
