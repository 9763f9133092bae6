"""A VM's disk on a shared iSCSI LUN in a lab with a controller: the host's agent starts
the VM with its disk (process kind `vm`: disk, diskRate), the controller's vMotion task
checks STO-5 and the target's agent starts the incoming VM, which reopens the LUN.

examples/storage-lab.yaml plus a controller on the management VLAN.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from click.testing import CliRunner
from diskkit import EXAMPLE, CliLab
from kernelkit import wait_until
from labkit import agent_pid, lab_name

from vmknet.cli.main import main
from vmknet.processes import parent
from vmknet.storage.paths import device_id
from vmknet.vm.disk import DEVFS

CONTROLLER = "  controller: {vlan: 10, address: 198.18.0.250/24, rollbackTimeout: 10}\n"
DEVICE = device_id("iqn.2026-11.com.example:array01.ds01", 2)  # LUN 2, 64 MiB


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CliLab]:
    name = lab_name()
    folder = tmp_path_factory.mktemp("vmdiskagent")
    text = EXAMPLE.read_text(encoding="utf-8")
    assert "\nphysical:\n" in text
    topology = folder / "storage-controller.yaml"
    topology.write_text(text.replace("\nphysical:\n", "\nphysical:\n" + CONTROLLER, 1),
                        encoding="utf-8")
    store = ["--store", str(folder / "inventory.db")]
    it = CliLab(name, store, {"VMKNET_DATASTORE_BASE": str(folder / "datastores")},
                vm="db01")
    try:
        it.cli("lab", "up", str(topology), "--name", name)
        it.rescan("esx01")
        yield it
    finally:
        CliRunner().invoke(main, [*store, "lab", "down", "--name", name], env=it.env)


def test_the_agent_starts_a_disk_vm_and_vmotion_reopens_the_lun(lab: CliLab) -> None:
    lab.cli("vm", "create", "db01", "-H", "esx01", "--memory", "16MiB", "--dirty-rate",
            "1MB/s", "--disk", DEVFS + DEVICE, "--disk-rate", "100")
    st = lab.status()
    assert parent(st["pid"]) == agent_pid(lab.name, "esx01")  # the agent's child
    assert st["disk"]["kind"] == "iscsi" and st["disk"]["size"] == 64 << 20
    assert wait_until(lambda: lab.status()["disk"]["writes"] >= 50, 10.0) is not None
    code, out = lab.run("vmotion", "db01", "--to", "esx02")  # esx02 has not rescanned
    lines = out.strip().splitlines()  # the controller's task refuses it: one line, its code
    assert code != 0 and len(lines) == 1 and lines[0].startswith("Error [STO-5]"), out
    lab.rescan("esx02")
    report = json.loads(lab.cli("vmotion", "db01", "--to", "esx02", "--json"))
    assert report["result"] == "completed", report
    assert report["registration"]["disk_bytes"] == 0, report  # the .vmx followed the VM
    files = json.loads(lab.cli("vm", "files", "--json"))
    assert [(f["vm"], f["host"]) for f in files] == [("db01", "esx02")]
    st = lab.status()
    assert st["host"] == "esx02" and parent(st["pid"]) == agent_pid(lab.name, "esx02")
    seq = st["disk"]["seq"]
    assert wait_until(lambda: lab.status()["disk"]["seq"] >= seq + 50, 10.0) is not None
    d = lab.status()["disk"]
    assert d["carried_verified"] is True, d
    assert d["io_errors"] == 0 and d["verify_failures"] == 0, d
    lab.cli("vm", "destroy", "db01")
