"""Where the management plane keeps its files in a lab (all under the lab's run dir, root-only).

    <run>/<lab>/controller/ca/        the CA (ca.key never leaves this folder)
    <run>/<lab>/controller/tls/       the controller's certificate and key
    <run>/<lab>/controller/api.sock   the local API the CLI talks to (mode 0600)
    <run>/<lab>/hosts/<host>/agent/   a host's certificate and key (after it joined)
    <run>/<lab>/hosts/<host>/join-token   a one-time join token, removed once used
"""

from __future__ import annotations

from pathlib import Path

from ..lab.registry import host_dir, run_dir

MGMT_PORT = 443  # SPEC ports: the management API, on the controller and on every host agent
CONTROLLER_MARKER = "vmknet.controller"
AGENT_MARKER = "vmknet.agent"


def controller_dir(lab: str) -> Path:
    return run_dir() / lab / "controller"


def api_socket(lab: str) -> Path:
    return controller_dir(lab) / "api.sock"


def agent_dir(lab: str, host: str) -> Path:
    return host_dir(lab, host) / "agent"


def join_token_file(lab: str, host: str) -> Path:
    return host_dir(lab, host) / "join-token"
