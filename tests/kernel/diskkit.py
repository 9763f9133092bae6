"""A lab driven through the CLI as a user would, for the tests of VMs with disks on shared
storage: one store, one environment, the VM's status and disk, the adapters' byte counts."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from click.testing import CliRunner

from vmknet.cli.main import main
from vmknet.inventory import Inventory
from vmknet.traffic.stats import adapter_counters

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "storage-lab.yaml"
PORTAL = "198.18.30.100:3260"  # array01's iSCSI portal in storage-lab.yaml


@dataclass
class CliLab:
    name: str
    store: list[str]  # ["--store", PATH]
    env: dict[str, str] = field(default_factory=dict)  # VMKNET_DATASTORE_BASE: the .vmx
    vm: str = "web01"  # the VM the test follows

    def run(self, *args: str) -> tuple[int, str]:
        result = CliRunner().invoke(main, [*self.store, *args], env=self.env)
        return result.exit_code, result.output

    def cli(self, *args: str) -> str:
        code, out = self.run(*args)
        assert code == 0, out
        return out

    def status(self) -> dict[str, Any]:
        got: dict[str, Any] = json.loads(self.cli("vm", "show", self.vm))
        return got

    def disk(self) -> dict[str, Any]:
        d: dict[str, Any] = self.status()["disk"]
        return d

    def adapter_bytes(self, host: str) -> dict[str, int]:
        """Bytes each adapter of `host` sent and received (a write's data goes out, its
        read-back comes in)."""
        dc = Inventory.open(Path(self.store[1])).read()
        return {vmk: c.tx_bytes + c.rx_bytes
                for vmk, c in adapter_counters(dc, self.name, host).items()}

    def rescan(self, host: str) -> None:
        """`host` discovers array01's portal and rescans vmhba64 (it then sees the LUNs)."""
        self.cli("esxcli", "-H", host, "iscsi", "adapter", "discovery", "sendtarget", "add",
                 "-A", "vmhba64", "-a", PORTAL)
        self.cli("esxcli", "-H", host, "storage", "core", "adapter", "rescan", "-A", "vmhba64")
