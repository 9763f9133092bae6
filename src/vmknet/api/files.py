"""Where the REST API keeps its files, in the lab's controller folder (root-only, 0700).

    <controller_dir>/rest.sock         the API on a unix socket (mode 0600)
    <controller_dir>/rest.url          the URL served on 127.0.0.1, while it is served
    <controller_dir>/api-tokens.json   the tokens' SHA-256 and roles (mode 0600)
"""

from __future__ import annotations

from pathlib import Path

from ..mgmt.paths import controller_dir


def rest_socket(lab: str) -> Path:
    return controller_dir(lab) / "rest.sock"


def url_file(lab: str) -> Path:
    return controller_dir(lab) / "rest.url"


def tokens_file(lab: str) -> Path:
    return controller_dir(lab) / "api-tokens.json"


def served_url(lab: str) -> str | None:
    """The browser URL of `lab`'s API, if its controller serves one."""
    try:
        return url_file(lab).read_text(encoding="utf-8").strip() or None
    except OSError:
        return None
