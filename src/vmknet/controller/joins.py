"""One-time join tokens: how a host proves it may join, before it has a certificate.

Like kubeadm's bootstrap tokens: `<id>.<secret>`, bound to one host name, with
an expiry; the controller keeps only a hash of the secret (in a root-only file,
so a restarted controller still honours tokens it gave out), and a token is
gone once used. The host also gets the CA's fingerprint with the token and
checks the controller against it (`pki.check_pinned`): neither side trusts the
other before the join.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from collections.abc import Callable
from pathlib import Path

from ..supervise.records import read_json, write_json
from ..trust.pki import TrustError

TOKEN_TTL = 24 * 3600.0
MAX_TOKEN = 200  # characters; longer is not ours


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


class JoinTokens:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()

    def _load(self) -> dict[str, dict[str, object]]:
        return read_json(self.path)

    def _save(self, data: dict[str, dict[str, object]]) -> None:
        write_json(self.path, data, mode=0o600)

    def create(self, host: str, ttl: float = TOKEN_TTL) -> str:
        token_id, secret = secrets.token_hex(3), secrets.token_hex(16)
        with self._lock:
            data = self._load()
            now = time.time()
            data = {k: v for k, v in data.items() if float(str(v["expires"])) > now}
            data[token_id] = {"host": host, "hash": _hash(secret), "expires": now + ttl}
            self._save(data)
        return f"{token_id}.{secret}"

    def redeem(self, token: str, admit: Callable[[str], object] = lambda host: None) -> str:
        """The host the token was made for; the token is spent. TrustError otherwise.

        `admit(host)` runs first and may refuse (raise): a token presented from the wrong
        place stays valid for the host it belongs to.
        """
        if not isinstance(token, str) or len(token) > MAX_TOKEN or token.count(".") != 1:
            raise TrustError("Malformed join token", code="NotAuthenticated")
        token_id, secret = token.split(".")
        with self._lock:
            data = self._load()
            entry = data.get(token_id)
            if entry is None or float(str(entry["expires"])) <= time.time() \
                    or not hmac.compare_digest(str(entry["hash"]), _hash(secret)):
                raise TrustError("Unknown, used or expired join token", code="NotAuthenticated")
            admit(str(entry["host"]))
            del data[token_id]
            self._save(data)
        return str(entry["host"])
