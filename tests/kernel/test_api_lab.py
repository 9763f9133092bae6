"""The REST API of a real lab: the controller serves it on 127.0.0.1 of the root namespace.

`lab up` of the example lab starts the controller in its namespace; this test,
in the root namespace, creates a token with the CLI and reads the hosts'
status over 127.0.0.1 (which only works if the controller opened that
listener before it entered its namespace), then checks the refusals and that
`lab down` takes the listeners away.
"""

from __future__ import annotations

import json
import stat
import subprocess
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from click.testing import CliRunner
from kernelkit import wait_until
from labkit import lab_name

from vmknet.api import files
from vmknet.cli.main import main
from vmknet.dataplane import naming
from vmknet.inventory import Inventory
from vmknet.lab import lifecycle

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "lab.yaml"
HOSTS = ["esx01", "esx02", "esx03"]


def _get(url: str, token: str | None) -> tuple[int, Any]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    request = urllib.request.Request(url, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def _listening(ns: str | None, port: int) -> bool:
    """Whether 127.0.0.1:`port` listens in `ns` (None: the root namespace)."""
    cmd = ["ss", "-Htln", f"src 127.0.0.1:{port}"]
    out = subprocess.run(["ip", "netns", "exec", ns, *cmd] if ns else cmd, capture_output=True,
                         text=True, check=True, timeout=10).stdout
    return bool(out.strip())


def test_hosts_status_over_loopback_with_a_token(tmp_path: Path) -> None:
    store = tmp_path / "inventory.db"
    inv = Inventory.open(store)
    name = lab_name()
    port = 0
    try:
        lifecycle.up(inv, EXAMPLE, name)
        url = files.served_url(name)
        assert url is not None and urlsplit(url).hostname == "127.0.0.1"
        port = urlsplit(url).port or 0
        assert stat.S_IMODE(files.rest_socket(name).stat().st_mode) == 0o600

        made = CliRunner().invoke(main, ["--store", str(store), "api", "token", "create",
                                         "--role", "read-only", "--name", "kernel-test"])
        assert made.exit_code == 0, made.output
        token = made.stdout.strip()
        assert stat.S_IMODE(files.tokens_file(name).stat().st_mode) == 0o600

        def available() -> bool:
            status, rows = _get(f"{url}/api/v1/hosts/status", token)
            assert status == 200, rows
            return [r["host"] for r in rows] == HOSTS and all(
                r["condition"] == "Available" and r["connected"] for r in rows)

        assert wait_until(available, 20, step=0.2) is not None
        status, rows = _get(f"{url}/api/v1/hosts/status", token)
        assert all(len(r["links"]) >= 1 and r["agentPid"] for r in rows)

        status, body = _get(f"{url}/api/v1/hosts/status", None)
        assert (status, body["code"]) == (401, "NotAuthenticated")
        status, body = _get(f"{url}/api/v1/tokens", token)
        assert (status, body["code"]) == (403, "NoPermission")
        status, hosts = _get(f"{url}/api/v1/hosts", token)
        assert status == 200 and sorted(hosts) == HOSTS

        # The loopback listener is the root namespace's, not the controller namespace's.
        assert _listening(None, port)
        assert not _listening(naming.controller_ns(name), port)
    finally:
        lifecycle.down(inv, name)
    assert files.served_url(name) is None
    assert not files.rest_socket(name).exists()
    assert not _listening(None, port)
