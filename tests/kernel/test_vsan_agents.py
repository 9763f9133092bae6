"""vSAN nodes in a lab with a controller: each is its host agent's child (kind `vsan`).

`vmknet vsan start` asks the controller, which checks the node's listeners are the
host's vSAN adapters (SEC-2) and relays to the host's agent; the agent keeps the cluster
key (sent over management TLS) in a 0600 file, opens the object I/O listeners in its own
namespaces and starts the node as its child. Membership converges and an object's
mirrored I/O works as on the direct path.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from labkit import agent_pid, lab_name
from vsankit import EXAMPLE, HOSTS, converged, wait_for

from vmknet.cli.main import main
from vmknet.controller.client import ControllerClient
from vmknet.errors import VmknetError
from vmknet.inventory import Inventory
from vmknet.processes import parent
from vmknet.vsan import objects, open_object, paths, procs
from vmknet.vsan.config import load_key

CONTROLLER = "physical:\n  controller: {vlan: 10, address: 198.18.0.250/24}\n"


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, list[str]]]:
    folder = tmp_path_factory.mktemp("vsanagents")
    (folder / "lab.yaml").write_text(CONTROLLER + EXAMPLE.read_text("utf-8"), "utf-8")
    name, store = lab_name(), ["--store", str(folder / "inventory.db")]
    try:
        result = CliRunner().invoke(main, [*store, "lab", "up", str(folder / "lab.yaml"),
                                           "--name", name])
        assert result.exit_code == 0, result.output
        yield name, store
    finally:
        procs.stop(name)
        CliRunner().invoke(main, [*store, "lab", "down", "--name", name])


def test_nodes_are_their_host_agents_children(lab: tuple[str, list[str]]) -> None:
    name, store = lab
    result = CliRunner().invoke(main, [*store, "vsan", "start"])
    assert result.exit_code == 0 and "host agent's child" in result.output, result.output
    nodes = procs.pids(name)
    assert sorted(nodes) == sorted(HOSTS)
    for host, pid in nodes.items():
        assert parent(pid) == agent_pid(name, host), host
    mode = stat.S_IMODE(os.stat(paths.key_path(name, "cl01")).st_mode)
    assert mode == 0o600
    wait_for("membership", lambda: converged(name), 20)
    dc = Inventory.open(Path(store[1])).read()
    meta = objects.create(dc, name, "cl01", "agent-disk", 8 << 20, 1)
    data = os.urandom(1 << 20)
    with open_object(name, "esx04", meta.uuid, store=store[1]) as disk:
        disk.write(3 << 20, data)
        assert disk.read(3 << 20, 1 << 20) == data
    args = procs.agent_args(dc, name, "cl01", "esx01", load_key(name, "cl01"))
    with pytest.raises(VmknetError) as got:  # the controller: a node off the vSAN adapters
        ControllerClient(name, 30).call("process.start", {
            "host": "esx01", "kind": "vsan", "name": "esx01",
            "args": {**args, "io": [{"stack": "defaultTcpipStack",
                                     "address": "198.18.0.11"}]}})
    assert got.value.code == "SEC-2", got.value
    result = CliRunner().invoke(main, [*store, "vsan", "stop"])
    assert result.exit_code == 0 and "Stopped 4 vSAN nodes" in result.output, result.output
    assert procs.pids(name) == {}
    listing = ControllerClient(name, 30).call("process.list", {"host": "esx01"})[0]
    assert not [p for p in listing["processes"] if p["kind"] == "vsan"]
    assert not [d for d in listing["died"] if d["kind"] == "vsan"]  # asked for, not a death
