"""Refused peers, recorded: `<run dir>/<lab>/security.jsonl`, one JSON object a line.

An engine listener that refuses a connection (no ticket, a wrong or spent one)
records it here before closing; `vmknet events` shows these records beside the
inventory's events. One `write()` of one line with O_APPEND is atomic for
lines this short, so processes need no lock to share the file.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

MAX_LINES_READ = 10_000
MAX_LINE = 2048


def record(path: Path, service: str, host: str, peer: str, code: str, message: str) -> None:
    entry = {"time": time.time(), "rule": "SEC-4", "service": service, "host": host,
             "peer": peer, "code": code, "message": message[:512]}
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        os.write(fd, (json.dumps(entry) + "\n").encode())
    finally:
        os.close(fd)


def read(path: Path, limit: int = 50) -> list[dict[str, Any]]:
    """The last `limit` records (malformed lines skipped)."""
    try:
        with path.open("rb") as f:
            lines = f.readlines()[-MAX_LINES_READ:]
    except OSError:
        return []
    out = []
    for line in lines[-limit:]:
        try:
            out.append(json.loads(line[:MAX_LINE]))
        except ValueError:
            continue
    return out
