"""vSAN nodes of a lab: how they are started (the controller's part), found and stopped.

One node per host of each vSAN cluster (and its witness host), `python -m
vmknet.vsan.node --lab=<lab> --host=<host> ...`, found from /proc by that command
line. In a lab without a controller `vmknet vsan start` plays the controller: it
makes the cluster's key once and hands each node its unicast peer list (VSAN-1)
on its command line; each node is detached (its own session) and logs to
vsan/logs/<host>.log. Its peers, listeners and settings all come from
`node_args`, so a node started any other way gets exactly the same. In a lab with a
controller each host's agent starts its node as its child instead (`start_by_agents`,
kind `vsan`), with the same arguments (`agent_args`).
"""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import time
from typing import Any

from ..errors import VmknetError
from ..model import Datacenter
from ..processes import alive, lab_argvs, terminate
from . import config, paths

MARKER = "vmknet.vsan.node"
START_TIMEOUT = 20.0


def node_args(dc: Datacenter, lab: str, cluster: str, host: str) -> list[str]:
    cv = config.view(dc, cluster)
    listen = config.local_addresses(dc, cv, host)
    routes = config.routes(dc, cv, host)
    args = [f"--lab={lab}", f"--host={host}", f"--cluster={cluster}",
            *(f"--listen={stack},{address}" for _vmk, stack, address in listen),
            *(f"--peer={r.arg()}" for h, r in sorted(routes.items()) if h != host),
            f"--members={','.join(cv.members)}", f"--capacity={cv.capacity}",
            f"--repair-delay={cv.repair_delay:g}"]
    if cv.witness_host:
        args.append(f"--witness-host={cv.witness_host}")
    return args


def agent_args(dc: Datacenter, lab: str, cluster: str, host: str, key: bytes) -> dict[str, Any]:
    """The `process.start` arguments of kind `vsan` (supervise/kinds.py) for `host`: what
    node_args gives on the direct path, and the key, which the agent keeps in a file."""
    cv = config.view(dc, cluster)
    eps = [{"stack": stack, "address": address}
           for _vmk, stack, address in config.local_addresses(dc, cv, host)]
    routes = config.routes(dc, cv, host)
    args: dict[str, Any] = {
        "cluster": cluster, "members": ",".join(cv.members),
        "peers": json.dumps([r.arg() for h, r in sorted(routes.items()) if h != host]),
        "listen": json.dumps(eps), "io": eps, "capacity": cv.capacity,
        "repairDelay": cv.repair_delay, "key": key.hex()}
    if cv.witness_host:
        args["witnessHost"] = cv.witness_host
    return args


def start_by_agents(dc: Datacenter, lab: str, cluster: str,
                    hosts: list[str] | None = None) -> dict[str, int]:
    """With a controller: each host's agent starts its node as its child (kind `vsan`); the
    controller checks its listeners are the host's vSAN adapters (SEC-2) and the key
    travels inside the management TLS channel only (VSAN-5)."""
    from ..controller.client import ControllerClient

    key = config.make_key(lab, cluster)
    cv = config.view(dc, cluster)
    running = pids(lab)
    client = ControllerClient(lab, START_TIMEOUT + 30)
    for host in [h for h in (hosts or list(cv.nodes)) if h not in running]:
        client.call("process.start", {"host": host, "kind": "vsan", "name": host,
                                      "args": agent_args(dc, lab, cluster, host, key)})
    return {h: p for h, p in pids(lab).items() if h in cv.nodes}


def pids(lab: str, host: str | None = None) -> dict[str, int]:
    """host -> pid of each running node of `lab`."""
    out = {}
    for pid, argv in lab_argvs(MARKER, lab).items():
        for a in argv:
            if a.startswith(b"--host=") and (host is None or a == f"--host={host}".encode()):
                out[a[7:].decode(errors="replace")] = pid
    return out


def start(dc: Datacenter, lab: str, cluster: str, hosts: list[str] | None = None) -> dict[str, int]:
    """Start the nodes of `cluster` not running yet (all at once); host -> pid of each."""
    config.make_key(lab, cluster)
    cv = config.view(dc, cluster)
    running = pids(lab)
    wanted = [h for h in (hosts or list(cv.nodes)) if h not in running]
    pending = {h: _spawn(lab, h, node_args(dc, lab, cluster, h)) for h in wanted}
    started = {}
    for host, (proc, fd) in pending.items():
        try:
            got = select.select([fd], [], [], START_TIMEOUT)[0]
            line = os.read(fd, 64).decode().strip() if got else ""
        finally:
            os.close(fd)
        if line != str(proc.pid):
            proc.kill()
            proc.wait()
            log = paths.log_path(lab, host)
            tail = log.read_text("utf-8", "replace").strip().splitlines()[-1:] if log.exists() \
                else []
            raise VmknetError(f"The vSAN node of {host} did not start: {' '.join(tail)} "
                              f"(log {log})", code="ProcessStartFailed", host=host)
        started[host] = proc.pid
    return {**{h: p for h, p in running.items() if h in cv.nodes}, **started}


def _spawn(lab: str, host: str, args: list[str]) -> tuple[subprocess.Popen[bytes], int]:
    log = paths.log_path(lab, host)
    log.parent.mkdir(parents=True, exist_ok=True)
    r, w = os.pipe()
    with open(log, "ab") as out:
        proc = subprocess.Popen([sys.executable, "-m", MARKER, *args, f"--ready-fd={w}"],
                                stdin=subprocess.DEVNULL, stdout=out, stderr=out,
                                pass_fds=(w,), start_new_session=True)
    os.close(w)
    return proc, r


def stop_by_agents(lab: str, host: str | None = None) -> list[int]:
    """With a controller: each node stopped by its host's agent (its parent), so the
    agent knows the end was asked for; a node the agent does not hold, by signal."""
    from ..controller.client import ControllerClient

    client = ControllerClient(lab, START_TIMEOUT + 30)
    ended: list[int] = []
    for h, pid in sorted(pids(lab, host).items()):
        try:
            client.call("process.stop", {"host": h, "kind": "vsan", "name": h})
        except VmknetError:  # started around the agent (the direct path): not its child
            terminate([pid])
        ended.append(pid)
    return ended


def stop(lab: str, host: str | None = None) -> list[int]:
    return terminate(list(pids(lab, host).values()))


def kill(lab: str, host: str) -> int:
    """SIGKILL a host's node (a host lost, as a test or the bench makes it); its pid."""
    pid = pids(lab, host)[host]
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 5.0
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(0.01)
    return pid
