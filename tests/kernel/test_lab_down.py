"""`lab down` after a crash: `lab up` killed with SIGKILL half way, its store forgotten."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner
from kernelkit import wait_until
from labkit import lab_name, write_small_lab

from vmknet.cli.main import main
from vmknet.dataplane.linux import netns
from vmknet.lab import Lab, registry


def _traces(lab: Lab) -> list[str]:
    etc = os.listdir(netns.ETC_NETNS) if os.path.isdir(netns.ETC_NETNS) else []
    found = netns.listed(lab.prefix) + [e for e in etc if e.startswith(lab.prefix)]
    return found + ([lab.name] if registry.store_of(lab.name) else [])


def test_down_after_kill_9_and_a_forgotten_store_leaves_nothing(tmp_path: Path) -> None:
    lab = Lab.named(lab_name())
    store = tmp_path / "crashed.db"
    up = subprocess.Popen([sys.executable, "-m", "vmknet.cli.main", "--store", str(store),
                           "lab", "up", str(write_small_lab(tmp_path)), "--name", lab.name],
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        # Kill it while it builds (namespaces exist, STP has not settled yet).
        assert wait_until(lambda: len(netns.listed(lab.prefix)) >= 3, 20, step=0.01)
    finally:
        up.send_signal(signal.SIGKILL)
        up.wait(timeout=10)
    assert netns.listed(lab.prefix)
    store.unlink(missing_ok=True)  # the store is gone: down works from the prefix alone
    runner = CliRunner()
    other = tmp_path / "other.db"
    refused = runner.invoke(main, ["--store", str(other), "lab", "up",
                                   str(write_small_lab(tmp_path)), "--name", lab.name])
    assert refused.exit_code == 4 and "lab down --name" in refused.output
    listed = runner.invoke(main, ["--store", str(other), "lab", "list"])
    assert any(line.startswith(lab.name + " ") for line in listed.output.splitlines())
    down = runner.invoke(main, ["--store", str(other), "lab", "down", "--name", lab.name])
    assert down.exit_code == 0, down.output
    assert "removed" in down.output
    assert _traces(lab) == []


def test_down_unbinds_the_store_and_status_then_says_no_lab(tmp_path: Path) -> None:
    lab = Lab.named(lab_name())
    store = ["--store", str(tmp_path / "inventory.db")]
    runner = CliRunner()
    up = runner.invoke(main, [*store, "lab", "up", str(write_small_lab(tmp_path)),
                              "--name", lab.name])
    try:
        assert up.exit_code == 0, up.output
        assert "controller -> h1 vmk0 198.18.0.11" in up.output
    finally:
        down = runner.invoke(main, [*store, "lab", "down"])  # this store's lab by default
    assert down.exit_code == 0 and "unbound" in down.output
    assert _traces(lab) == []
    status = runner.invoke(main, [*store, "lab", "status"])
    assert status.exit_code == 3
    assert "No lab is up for this inventory: run 'vmknet lab up'" in status.output
