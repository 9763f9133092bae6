"""The management plane of a lab: start the controller and one agent per host, stop them.

`lab up` calls `start()` once the namespaces exist: the controller process in
the controller namespace, then for each host a join token and an agent in the
namespace of the stack of its management adapter; it waits until every host's
agent heartbeats. `start()` is also the repair: it starts only what is not
running (an agent killed with -9 comes back and, already joined, simply goes
on). `stop()` ends agents and controller, found by command line, so it works
after any crash.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from ..dataplane import naming
from ..errors import VmknetError
from ..mgmt import paths, spawn
from ..model import Datacenter
from ..processes import lab_argvs, lab_pids, terminate
from .client import ControllerClient
from .service import management_links

CONNECT_TIMEOUT = 20.0


@dataclass
class MgmtReport:
    controller_pid: int
    started: list[str]  # hosts whose agent was started now
    hosts: list[dict[str, Any]]  # the controller's host status after the wait
    seconds: float


def start(lab: str, dc: Datacenter, store: str, timeout: float = CONNECT_TIMEOUT) -> MgmtReport:
    t0 = time.perf_counter()
    if dc.physical.controller is None:
        raise VmknetError("The lab has no controller (physical.controller)", code="NotFound")
    client = ControllerClient(lab)
    running = lab_pids(paths.CONTROLLER_MARKER, lab)
    if running and client.running():
        controller_pid = running[0]
    else:
        terminate(running)
        controller_pid = spawn.start(paths.CONTROLLER_MARKER,
                                     [f"--lab={lab}", f"--store={store}"],
                                     paths.controller_dir(lab).parent / "controller.log")
    address = str(dc.physical.controller.address.ip)
    started = []
    running_agents = _agent_hosts(lab)
    for host in sorted(dc.hosts):
        if host in running_agents or not management_links(dc, host):
            continue
        _start_agent(client, lab, dc, host, address)
        started.append(host)
    deadline = time.monotonic() + timeout
    rows = client.host_status()
    while any(not r["connected"] for r in rows) and time.monotonic() < deadline:
        time.sleep(0.1)
        rows = client.host_status()
    return MgmtReport(controller_pid, started, rows, time.perf_counter() - t0)


def _agent_hosts(lab: str) -> set[str]:
    """The hosts whose agent runs (one read of /proc, whatever the number of hosts)."""
    return {a.decode(errors="replace").removeprefix("--host=")
            for argv in lab_argvs(paths.AGENT_MARKER, lab).values()
            for a in argv if a.startswith(b"--host=")}


def _start_agent(client: ControllerClient, lab: str, dc: Datacenter, host: str,
                 controller: str) -> int:
    args = [f"--lab={lab}", f"--host={host}", f"--controller={controller}"]
    if not (paths.agent_dir(lab, host) / "cert.pem").exists():
        grant = client.call("join-token", {"host": host})
        token_file = paths.join_token_file(lab, host)
        token_file.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        token_file.touch(mode=0o600)
        token_file.write_text(str(grant["token"]))
        args.append(f"--ca-fingerprint={grant['caFingerprint']}")
    _address, vmk = management_links(dc, host)[0]
    stack = dc.host(host).vmknics[vmk].netstack
    args.append(f"--netns={naming.stack_ns(lab, host, stack)}")
    return spawn.start(paths.AGENT_MARKER, args, paths.agent_dir(lab, host).parent / "agent.log")


def stopped(lab: str, dc: Datacenter) -> list[str]:
    """What of the lab's management plane is not running: "controller", "agent of HOST"."""
    out = [] if lab_pids(paths.CONTROLLER_MARKER, lab) else ["controller"]
    running_agents = _agent_hosts(lab)
    return out + [f"agent of {h}" for h in sorted(dc.hosts)
                  if management_links(dc, h) and h not in running_agents]


def stop(lab: str) -> list[int]:
    """End every agent, then the controller, of `lab` (SIGTERM, then SIGKILL)."""
    return terminate(lab_pids(paths.AGENT_MARKER, lab)) + terminate(
        lab_pids(paths.CONTROLLER_MARKER, lab))
