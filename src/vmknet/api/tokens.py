"""The REST API's bearer tokens: roles, and a root-only file that holds only their hashes.

    book = TokenBook(controller_dir / "api-tokens.json")
    secret, entry = book.create("operator", name="ci")   # the secret is shown once
    book.authenticate(secret)                            # -> entry, or None
    book.revoke(entry.id)

A token is 32 random bytes (`vmk_` + URL-safe base64); the file keeps its
SHA-256, never the token, so reading the file does not let one call the API.
The file is rewritten atomically with mode 0600; the controller process and
the CLI (`vmknet api token ...`) share it, so `authenticate` reloads it when
its modification time or size changed.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import os
import secrets
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ..errors import InvalidArgument, NotFound

READ_ONLY, OPERATOR, ADMIN = "read-only", "operator", "admin"
ROLES = (READ_ONLY, OPERATOR, ADMIN)  # each role may do what the ones before it may
PREFIX = "vmk_"
MAX_NAME = 64
MAX_TOKEN = 128  # a presented token longer than this is refused unread


@dataclass(frozen=True)
class TokenEntry:
    id: str  # public: the first 12 hex digits of the hash, for list and revoke
    name: str
    role: str
    sha256: str
    created: float

    def public(self) -> dict[str, Any]:
        """What list shows: everything but the hash."""
        return {"id": self.id, "name": self.name, "role": self.role, "created": self.created}


def digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def allows(role: str, needed: str) -> bool:
    """Whether `role` may do what `needed` may (admin > operator > read-only)."""
    return role in ROLES and ROLES.index(role) >= ROLES.index(needed)


class TokenBook:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._seen: tuple[int, int] | None = None  # (mtime_ns, size) of the loaded file
        self._entries: dict[str, TokenEntry] = {}  # by sha256

    # -- reading -------------------------------------------------------------------------

    def entries(self) -> list[TokenEntry]:
        with self._lock:
            self._refresh()
            return sorted(self._entries.values(), key=lambda e: (e.created, e.id))

    def authenticate(self, token: str) -> TokenEntry | None:
        if not token.startswith(PREFIX) or len(token) > MAX_TOKEN:
            return None
        wanted = digest(token)
        with self._lock:
            self._refresh()
            entry = self._entries.get(wanted)
        # The lookup keys on a hash of a 256-bit secret; the compare is constant time anyway.
        if entry is None or not hmac.compare_digest(entry.sha256, wanted):
            return None
        return entry

    def _refresh(self) -> None:
        try:
            st = self.path.stat()
        except FileNotFoundError:
            self._seen, self._entries = None, {}
            return
        stamp = (st.st_mtime_ns, st.st_size)
        if stamp == self._seen:
            return
        self._entries = {e.sha256: e for e in self._read()}
        self._seen = stamp

    def _read(self) -> list[TokenEntry]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return []
        except (OSError, ValueError) as err:
            raise InvalidArgument(f"The token file {self.path} cannot be read: {err}") from None
        rows = data.get("tokens", []) if isinstance(data, dict) else []
        out = []
        for row in rows if isinstance(rows, list) else []:
            with contextlib.suppress(TypeError, KeyError, ValueError):
                entry = TokenEntry(id=str(row["id"]), name=str(row["name"]),
                                   role=str(row["role"]), sha256=str(row["sha256"]),
                                   created=float(row["created"]))
                if entry.role in ROLES:
                    out.append(entry)
        return out

    # -- writing -------------------------------------------------------------------------

    def create(self, role: str, name: str = "") -> tuple[str, TokenEntry]:
        """A new token of `role`; returns the secret (shown once) and its entry."""
        if role not in ROLES:
            raise InvalidArgument(f"Unknown role {role!r} (one of: {', '.join(ROLES)})",
                                  role=role)
        name = name.strip()
        if len(name) > MAX_NAME or any(not c.isprintable() for c in name):
            raise InvalidArgument(f"A token name is at most {MAX_NAME} printable characters")
        secret = PREFIX + secrets.token_urlsafe(32)
        sha = digest(secret)
        entry = TokenEntry(id=sha[:12], name=name or f"{role}-{sha[:6]}", role=role,
                           sha256=sha, created=round(time.time(), 3))
        with self._lock:
            entries = self._read()
            self._write([*entries, entry])
        return secret, entry

    def revoke(self, token_id: str) -> TokenEntry:
        with self._lock:
            entries = self._read()
            gone = [e for e in entries if e.id == token_id]
            if not gone:
                raise NotFound(f"No API token with id {token_id!r}: see 'vmknet api token "
                               "list'", id=token_id)
            self._write([e for e in entries if e.id != token_id])
        return gone[0]

    def _write(self, entries: list[TokenEntry]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump({"tokens": [asdict(e) for e in entries]}, f, indent=1)
        os.chmod(tmp, 0o600)  # even if the file existed with another mode
        tmp.replace(self.path)  # a reader sees the old book or the new one, never half
        self._seen = None  # the next read reloads
