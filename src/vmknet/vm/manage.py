"""VMs of a lab: create, list, show, destroy (`vmknet vm ...`)."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import time
from dataclasses import asdict
from typing import Any

from ..controller.client import ControllerClient
from ..errors import AlreadyExists, InvalidArgument, NotFound
from ..mgmt.paths import api_socket
from ..model import Datacenter
from . import control, registry
from .disk import DiskSpec, check_host
from .diskio import DEFAULT_RATE
from .launch import spawn
from .registry import VmRecord, alive

STOP_TIMEOUT = 5.0
START_TIMEOUT = 100.0  # s: the controller gives the agent 90 s (a large guest populating)


def via_controller(dc: Datacenter, lab: str) -> bool:
    """Whether the lab's processes are started by its hosts' agents (through the controller).

    A lab with a controller (physical.controller) that `lab up` started has one: its
    api.sock exists. A lab without one (or an inventory realised without `lab up`) keeps
    the direct path: the CLI process starts the VM itself, detached.
    """
    return dc.physical.controller is not None and api_socket(lab).exists()


def create(dc: Datacenter, lab: str, name: str, host: str, memory: int, dirty_rate: int,
           seed: int = 1, disk: DiskSpec | None = None,
           disk_rate: int = int(DEFAULT_RATE), disk_seq: int = 0) -> VmRecord:
    """Boot a VM on `host` of the lab; returns its record once it runs.

    `disk`: its virtual disk (kind resolved: vm.disk.located), opened by the VM process
    at boot; the guest writes `disk_rate` blocks a second to it and reads each back, from
    write number `disk_seq` on (after a power-off: it first reads back the last one)."""
    if host not in dc.hosts:
        raise NotFound(f"Host {host} is not in the inventory", host=host)
    if memory <= 0 or dirty_rate < 0:
        raise InvalidArgument("Memory must be positive and the dirty rate not negative")
    with contextlib.suppress(NotFound):
        old = registry.load(lab, name)
        if alive(old.pid):
            raise AlreadyExists(f"VM {name} already runs on {old.host} (pid {old.pid})",
                                vm=name)
    if disk is not None:
        check_host(dc, lab, host, disk)
    spec = json.dumps(disk.to_dict()) if disk is not None else None
    if via_controller(dc, lab):
        # The host's agent starts the VM as its child and supervises it.
        args: dict[str, object] = {"memory": memory, "dirtyRate": dirty_rate, "seed": seed}
        if spec is not None:
            args |= {"disk": spec, "diskRate": disk_rate, "diskSeq": disk_seq}
        ControllerClient(lab, START_TIMEOUT).call("process.start", {
            "host": host, "kind": "vm", "name": name, "args": args})
    else:
        extra = [f"--disk={spec}", f"--disk-rate={disk_rate}", f"--disk-seq={disk_seq}"
                 ] if spec is not None else []
        spawn("run", lab, name, host, [f"--memory={memory}", f"--dirty-rate={dirty_rate}",
                                        f"--seed={seed}", *extra])
    return registry.load(lab, name)


def records(lab: str) -> list[VmRecord]:
    """The lab's VMs whose process still runs (a crashed VM's record is dropped)."""
    out = []
    for rec in registry.records(lab):
        if alive(rec.pid):
            out.append(rec)
        else:
            registry.remove(lab, rec.name, pid=rec.pid)
    return out


def get(lab: str, name: str) -> VmRecord:
    rec = registry.load(lab, name)
    if not alive(rec.pid):
        registry.remove(lab, name, pid=rec.pid)
        raise NotFound(f"VM {name} is not running (its process {rec.pid} is gone)", vm=name)
    return rec


def status(lab: str, name: str) -> dict[str, Any]:
    rec = get(lab, name)
    return asdict(rec) | control.request(rec.control, {"cmd": "status"})


def digest(lab: str, name: str) -> str:
    """The digest of the VM's memory (the guest is paused for the time of the hash)."""
    return str(control.request(get(lab, name).control, {"cmd": "digest"})["digest"])


def destroy(lab: str, name: str) -> VmRecord:
    rec = get(lab, name)
    with contextlib.suppress(NotFound, OSError):
        control.request(rec.control, {"cmd": "stop"})
    deadline = time.monotonic() + STOP_TIMEOUT
    while alive(rec.pid) and time.monotonic() < deadline:
        time.sleep(0.02)
    if alive(rec.pid):
        with contextlib.suppress(ProcessLookupError):
            os.kill(rec.pid, signal.SIGKILL)
    registry.remove(lab, name, pid=rec.pid)
    return rec
