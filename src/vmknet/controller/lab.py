"""The management plane of a lab: start the controller and one agent per host, stop them.

`lab up` calls `start()` once the namespaces exist: the controller process in
the controller namespace, then for each host a join token and an agent in the
namespace of the stack of its management adapter; it waits until every host's
agent heartbeats. `start()` is also the repair: it starts only what is not
running (an agent killed with -9 comes back and, already joined, simply goes
on). `stop()` ends agents and controller, found by command line, so it works
after any crash.

On an etcd store a lab may run several controllers (`controllers`): one is
elected through etcd and serves, the others wait as standbys (election.py).
The wanted number and the lease TTL are kept beside the controller's folder,
so a repair starts a missing standby again with the same settings.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..dataplane import naming
from ..errors import InvalidArgument, VmknetError
from ..mgmt import paths, spawn
from ..model import Datacenter
from ..processes import lab_argvs, lab_pids, terminate
from ..store.coordination import LEADER_KEY
from ..store.paths import is_etcd
from ..supervise.records import read_json, write_json
from .client import ControllerClient
from .election import DEFAULT_TTL
from .service import management_links

CONNECT_TIMEOUT = 20.0
MAX_CONTROLLERS = 5
LEAD_GRACE = 10.0  # s beyond one lease TTL for a controller to be elected and serve
MIN_TTL = 2  # s: etcd rounds a shorter lease up, and fencing keeps a 0.5 s margin


@dataclass
class MgmtReport:
    controller_pid: int
    started: list[str]  # hosts whose agent was started now
    hosts: list[dict[str, Any]]  # the controller's host status after the wait
    seconds: float


def start(lab: str, dc: Datacenter, store: str, timeout: float = CONNECT_TIMEOUT, *,
          controllers: int | None = None, lease_ttl: int | None = None) -> MgmtReport:
    """Start what of the management plane is not running; `controllers` and `lease_ttl`
    (etcd only) are kept for later repairs, which leave them out."""
    t0 = time.perf_counter()
    if dc.physical.controller is None:
        raise VmknetError("The lab has no controller (physical.controller)", code="NotFound")
    check(store, controllers, lease_ttl)
    client = ControllerClient(lab)
    if is_etcd(store):
        controller_pid = _start_elected(lab, store, controllers, lease_ttl)
    else:
        running = lab_pids(paths.CONTROLLER_MARKER, lab)
        if running and client.running():
            controller_pid = running[0]
        else:
            terminate(running)
            controller_pid = _start_controller(lab, store, [])
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


def check(store: str, controllers: int | None, lease_ttl: int | None) -> None:
    """Refuse what `start` could not do, before a lab is built for it."""
    if not is_etcd(store) and ((controllers or 1) > 1 or lease_ttl is not None):
        raise InvalidArgument("Several controllers (and their lease TTL) need an etcd store, "
                              "where they elect one: vmknet --store etcd://HOST:PORT/PREFIX "
                              "lab up ...")
    if not 1 <= (controllers or 1) <= MAX_CONTROLLERS or not MIN_TTL <= (
            lease_ttl or MIN_TTL) <= 600:
        raise InvalidArgument(f"A lab runs 1 to {MAX_CONTROLLERS} controllers with a lease "
                              f"of {MIN_TTL} to 600 s")


def _start_controller(lab: str, store: str, extra: list[str]) -> int:
    return spawn.start(paths.CONTROLLER_MARKER, [f"--lab={lab}", f"--store={store}", *extra],
                       paths.controller_dir(lab).parent / "controller.log")


# -- several controllers on an etcd store ------------------------------------------------------


def _settings_file(lab: str) -> Path:
    return paths.controller_dir(lab).parent / "controllers.json"


def settings(lab: str) -> tuple[int, int]:
    """(wanted controllers, lease TTL) of `lab`: what its `lab up` asked for."""
    kept = read_json(_settings_file(lab))
    wanted, ttl = kept.get("controllers", 1), kept.get("leaseTtl", DEFAULT_TTL)
    return (wanted if isinstance(wanted, int) else 1, ttl if isinstance(ttl, int) else DEFAULT_TTL)


def _start_elected(lab: str, store: str, controllers: int | None,
                   lease_ttl: int | None) -> int:
    """Start controllers until `controllers` run; the elected one's pid once it serves."""
    kept_n, kept_ttl = settings(lab)
    wanted, ttl = controllers or kept_n, lease_ttl or kept_ttl
    if (wanted, ttl) != (kept_n, kept_ttl) or not _settings_file(lab).exists():
        write_json(_settings_file(lab), {"controllers": wanted, "leaseTtl": ttl})
    for _ in range(wanted - len(lab_pids(paths.CONTROLLER_MARKER, lab))):
        _start_controller(lab, store, [f"--lease-ttl={ttl}"])
    # A standby is ready as soon as it campaigns; wait for the leader to serve. After a
    # leader died with -9 its key stays for up to one TTL: then a standby takes over.
    client, deadline = ControllerClient(lab, timeout=2.0), time.monotonic() + ttl + LEAD_GRACE
    while True:
        try:
            return int(client.call("ping")["pid"])
        except VmknetError:
            if time.monotonic() > deadline:
                raise VmknetError(f"No controller of lab {lab} was elected within "
                                  f"{ttl + LEAD_GRACE:.0f} s (see "
                                  f"{paths.controller_dir(lab).parent / 'controller.log'})",
                                  code="ControllerNotRunning") from None
            time.sleep(0.1)


@dataclass
class Controllers:
    pids: list[int]  # every controller process of the lab
    leader: str | None  # the elected candidate ("machine:pid"), None between leaders
    leader_pid: int | None  # the one that answers on api.sock
    wanted: int


def controllers(lab: str, store: str) -> Controllers:
    """Which controllers of `lab` run and which one leads (etcd: as the leader key says)."""
    pids = sorted(lab_pids(paths.CONTROLLER_MARKER, lab))
    answer_pid: int | None = None
    with contextlib.suppress(VmknetError, KeyError, TypeError, ValueError):
        answer_pid = int(ControllerClient(lab, timeout=2.0).call("ping")["pid"])
    if not is_etcd(store):
        return Controllers(pids, None, answer_pid, 1)
    from ..store.etcd_client import Etcd, parse

    kv = Etcd(parse(store)).get(LEADER_KEY)
    return Controllers(pids, kv.value if kv else None, answer_pid, settings(lab)[0])


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
    running = len(lab_pids(paths.CONTROLLER_MARKER, lab))
    out = [] if running else ["controller"]
    out += ["standby controller"] * (settings(lab)[0] - max(running, 1))
    running_agents = _agent_hosts(lab)
    return out + [f"agent of {h}" for h in sorted(dc.hosts)
                  if management_links(dc, h) and h not in running_agents]


def stop(lab: str) -> list[int]:
    """End every agent, then the controllers, of `lab` (SIGTERM, then SIGKILL)."""
    _settings_file(lab).unlink(missing_ok=True)
    return terminate(lab_pids(paths.AGENT_MARKER, lab)) + terminate(
        lab_pids(paths.CONTROLLER_MARKER, lab))
