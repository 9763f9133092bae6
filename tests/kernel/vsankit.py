"""Helpers of the vSAN kernel tests: the example lab with a short repair delay, up and down."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from labkit import lab_name
from traffickit import wait_path

from vmknet.inventory import Inventory
from vmknet.lab import lifecycle
from vmknet.model import DEFAULT_STACK, Datacenter
from vmknet.vsan import procs
from vmknet.vsan.objects import node_states

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "vsan-lab.yaml"
HOSTS = ("esx01", "esx02", "esx03", "esx04")


@dataclass
class VsanLab:
    inv: Inventory
    lab: str
    store: Path

    @property
    def dc(self) -> Datacenter:
        return self.inv.read()


def lab_text(repair_delay: float) -> str:
    return EXAMPLE.read_text("utf-8") + f"    vsanConfig: {{capacity: 512MiB, repairDelay: " \
                                        f"{repair_delay}}}\n"


def wait_for(what: str, check: Callable[[], bool], limit: float = 15.0) -> float:
    start = time.monotonic()
    while time.monotonic() - start < limit:
        if check():
            return time.monotonic() - start
        time.sleep(0.05)
    raise AssertionError(f"{what}: not within {limit} s")


def converged(lab: str, hosts: tuple[str, ...] = HOSTS) -> bool:
    states = node_states(lab, hosts)
    return len(states) == len(hosts) and all(s["partition"] == sorted(hosts)
                                             for s in states.values())


@contextmanager
def vsan_lab(folder: Path, repair_delay: float = 600.0) -> Iterator[VsanLab]:
    (folder / "lab.yaml").write_text(lab_text(repair_delay), encoding="utf-8")
    inv = Inventory.open(folder / "inventory.db")
    name = lab_name()
    try:
        lifecycle.up(inv, folder / "lab.yaml", name)
        for i, host in enumerate(HOSTS):
            wait_path(name, host, DEFAULT_STACK, f"198.18.50.1{(i + 1) % 4 + 1}")
        env = VsanLab(inv, name, folder / "inventory.db")
        procs.start(env.dc, name, "cl01")
        wait_for("membership converged", lambda: converged(name))
        yield env
    finally:
        procs.stop(name)
        lifecycle.down(inv, name)
