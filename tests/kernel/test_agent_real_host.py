"""The real-host path of the host agent, in the example lab (docs/deploy.md).

esx03 leaves the lab's own management (its lab agent stops, its lab credential
goes) and comes back the way a real host does: `vmknet host join-token esx03`
on the controller's side, then the printed `vmknet-agent join ...` and
`vmknet-agent run` as separate processes with a state dir of their own,
entering esx03's management stack as a real host's agent would simply be in
its default stack.
"""

from __future__ import annotations

import os
import shlex
import shutil
import signal
import socket
import stat
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from kernelkit import wait_until
from labkit import agent_pid, lab_name

from vmknet.agent import host as host_cli
from vmknet.agent.service import ControllerAddress
from vmknet.controller.client import ControllerClient
from vmknet.dataplane import naming
from vmknet.inventory import Inventory
from vmknet.lab import lifecycle
from vmknet.mgmt import paths
from vmknet.processes import lab_pids, terminate
from vmknet.trust.tickets import TicketBook

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "lab.yaml"
BIN = Path(sys.executable).parent
VMKNET, AGENT = BIN / "vmknet", BIN / "vmknet-agent"
ESX03 = "198.18.0.13"


@dataclass
class Built:
    name: str
    store: Path

    @property
    def esx03_ns(self) -> str:
        return naming.stack_ns(self.name, "esx03", "defaultTcpipStack")

    def status(self, host: str) -> dict[str, object]:
        return {r["host"]: r for r in ControllerClient(self.name).host_status()}[host]


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Built]:
    assert AGENT.exists(), f"{AGENT} is missing: run scripts/setup.sh (pip install -e .)"
    store = tmp_path_factory.mktemp("agent-host") / "inventory.db"
    inv = Inventory.open(store)
    name = lab_name()
    try:
        lifecycle.up(inv, EXAMPLE, name)
        yield Built(name, store)
    finally:
        lifecycle.down(inv, name)
    assert not lab_pids(paths.AGENT_MARKER, name), "lab down left an agent running"


def _run(*argv: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(a) for a in argv], capture_output=True, text=True, timeout=60)


def _listeners_443(ns: str) -> list[str]:
    out = subprocess.run(["ip", "netns", "exec", ns, "ss", "-Htln"], capture_output=True,
                         text=True, check=True).stdout
    return [f for f in (line.split()[3] for line in out.splitlines()) if f.endswith(":443")]


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _stop_lab_agent(b: Built, host: str) -> None:
    terminate([agent_pid(b.name, host)])
    shutil.rmtree(paths.agent_dir(b.name, host))


def test_a_host_joins_by_token_and_runs_as_a_service(built: Built, tmp_path: Path) -> None:
    assert wait_until(lambda: built.status("esx03")["condition"] == "Available", 15) is not None
    _stop_lab_agent(built, "esx03")
    assert wait_until(lambda: not built.status("esx03")["connected"], 8) is not None

    # The controller's side: a token, the CA pin and the exact command for the host.
    grant = _run(VMKNET, "--store", built.store, "host", "join-token", "esx03")
    assert grant.returncode == 0, grant.stderr
    command = shlex.split(grant.stdout.strip().splitlines()[-1])
    assert command[:2] == ["vmknet-agent", "join"]
    printed = host_cli.parse(command[1:])
    assert printed.controller == ControllerAddress("198.18.0.250") and printed.host == "esx03"
    assert len(printed.ca_fingerprint) == 64 and printed.ca_fingerprint in grant.stdout

    # The host's side: join once, into a root-only state dir.
    state = tmp_path / "state"
    joined = _run(AGENT, *command[1:], "--state-dir", state, "--netns", built.esx03_ns)
    assert joined.returncode == 0, joined.stderr
    assert "as esx03" in joined.stdout and f"vmk0 {ESX03}" in joined.stdout
    assert _mode(state) == 0o700
    assert _mode(state / "key.pem") == 0o600
    assert _mode(state / "agent.json") == 0o600 and _mode(state / "links.json") == 0o600

    # The token is spent: the controller refuses it from a fresh state dir, and nothing
    # is written there; a second join into the joined dir is refused before any network.
    other = tmp_path / "other"
    again = _run(AGENT, *command[1:], "--state-dir", other, "--netns", built.esx03_ns)
    assert again.returncode != 0
    assert again.stderr.startswith("Error [NotAuthenticated]: "), again.stderr
    assert len(again.stderr.strip().splitlines()) == 1
    assert not (other / "cert.pem").exists() and not (other / "agent.json").exists()
    twice = _run(AGENT, *command[1:], "--state-dir", state, "--netns", built.esx03_ns)
    assert twice.returncode == 4 and twice.stderr.startswith("Error [AlreadyExists]: ")

    # The service: readiness to systemd (NOTIFY_SOCKET), heartbeats, the controller's calls.
    notify_path = tmp_path / "notify"
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify.bind(str(notify_path))
    notify.settimeout(20)
    log = (tmp_path / "agent.log").open("w+")
    proc = subprocess.Popen([str(AGENT), "run", "--netns", built.esx03_ns, "--state-dir",
                             str(state)], stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                            env={**os.environ, "NOTIFY_SOCKET": str(notify_path)})
    try:
        ready = notify.recv(4096).decode()
        assert "READY=1" in ready and f"MAINPID={proc.pid}" in ready
        assert wait_until(lambda: built.status("esx03")["condition"] == "Available"
                          and built.status("esx03")["agentPid"] == proc.pid, 10) is not None
        assert _listeners_443(built.esx03_ns) == [f"{ESX03}:443"]
        got = ControllerClient(built.name).call(
            "ticket", {"kind": "nfc", "source": "esx01", "target": "esx03", "uses": 1})
        assert TicketBook(state / "tickets").get(str(got["id"])) is not None

        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
        assert "STOPPING=1" in notify.recv(4096).decode()
        log.seek(0)
        text = log.read()
        assert "esx03: agent stopped" in text and "Traceback" not in text, text
        assert _listeners_443(built.esx03_ns) == []
        assert wait_until(lambda: not built.status("esx03")["connected"], 8) is not None
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        notify.close()
        log.close()
