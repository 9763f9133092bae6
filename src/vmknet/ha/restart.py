"""Where a failed host's VMs restart, in which order, and which VMs are protected (pure).

Order: restart priority (`highest` first, `disabled` never), then name.
Placement: the surviving host with the most free memory that holds the VM
(each host counts `host_memory`, the cluster's admission control setting).
Admission control is vSphere's percentage policy on memory: the cluster keeps
`failover_percent` of its memory free for failover; while the powered-on VMs
use more than the rest, the cluster cannot promise their restart, and
`protection` says so for every VM (vSphere refuses power-ons instead; vmknet
starts VMs outside HA, so it reports).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from ..model.cluster import PRIORITY_ORDER


@dataclass(frozen=True)
class Vm:
    name: str
    memory: int
    dirty_rate: int = 0
    disk: str | None = None  # its disk (vm.disk.DiskSpec as JSON): it restarts from it

    def to_wire(self) -> dict[str, int | str | None]:
        return {"name": self.name, "memory": self.memory, "dirtyRate": self.dirty_rate,
                "disk": self.disk}

    def local_disk(self) -> str | None:
        """The host whose local datastore holds its disk (no other host can open it)."""
        try:
            spec = json.loads(self.disk) if self.disk else None
        except ValueError:
            return "?"
        if isinstance(spec, dict) and spec.get("kind") == "local":
            return str(spec.get("owner") or "?")
        return None


def order(vms: Iterable[Vm], priority: Callable[[str], str]) -> list[Vm]:
    ranked = [v for v in vms if priority(v.name) in PRIORITY_ORDER]
    return sorted(ranked, key=lambda v: (PRIORITY_ORDER.index(priority(v.name)), v.name))


def place(vms: Iterable[Vm], used: Mapping[str, int], host_memory: int,
          priority: Callable[[str], str]) -> tuple[list[tuple[Vm, str]], list[tuple[Vm, str]]]:
    """(vm, host) to restart in order, and (vm, why not) for the ones that cannot."""
    free = {h: host_memory - u for h, u in used.items()}
    placed: list[tuple[Vm, str]] = []
    refused: list[tuple[Vm, str]] = []
    for vm in vms:
        if priority(vm.name) not in PRIORITY_ORDER:
            refused.append((vm, "restart priority disabled"))
    for vm in order(vms, priority):
        if vm.local_disk():
            refused.append((vm, f"its disk is on {vm.local_disk()}'s local datastore"))
            continue
        fits = [h for h in sorted(free) if free[h] >= vm.memory]
        if not fits:
            refused.append((vm, "no surviving host has the memory for it"))
            continue
        host = max(fits, key=lambda h: (free[h], h))
        free[host] -= vm.memory
        placed.append((vm, host))
    return placed, refused


def protection(vms: Mapping[str, Vm], hosts: int, host_memory: int, failover_percent: int,
               admission: bool, priority: Callable[[str], str]) -> dict[str, str | None]:
    """Per VM: None when HA will restart it after a host failure, else why not."""
    used = sum(v.memory for v in vms.values())
    capacity = hosts * host_memory
    over = admission and used > capacity * (100 - failover_percent) // 100
    out: dict[str, str | None] = {}
    for name in sorted(vms):
        if priority(name) not in PRIORITY_ORDER:
            out[name] = "restart priority disabled"
        elif vms[name].local_disk():
            out[name] = f"its disk is on {vms[name].local_disk()}'s local datastore"
        elif hosts < 2:
            out[name] = "no other host in the cluster to restart it on"
        elif over:
            out[name] = (f"the VMs use {used >> 20} MiB, more than the {100 - failover_percent}%"
                         f" of {capacity >> 20} MiB admission control leaves")
        else:
            out[name] = None
    return out
