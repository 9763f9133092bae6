"""Management plane in the lab: what the agent hop costs a change, and the bytes it moves.

    sudo .venv/bin/python bench/bench_mgmt_lab.py            # 5 changes each way, a migration
    sudo .venv/bin/python bench/bench_mgmt_lab.py --smoke    # 2 changes each way, what CI runs

On the example lab (examples/lab.yaml: 3 hosts, a controller, one agent per
host), in one run:

1. the management traffic at rest: bytes/s on the hosts' management adapters
   (every vmk0 with the management tag), which is the agents' heartbeats;
2. one change to every host (vmk3's MTU, 1500 <-> 8000), applied alternately
   - through the agents (the rollout: each host's agent runs its part and
     confirms, MGMT-2/3), all hosts in one batch (the hop's cost) and one host
     at a time (the cost of `--max-unavailable 1`), and
   - directly, as before the management plane: one apply from this process
     with REQ-5's echo from the controller namespace,
   timed end to end (`Inventory.apply`); the ratio agents / direct is the
   overhead of the agent hop (aim: at most 1.2x), and the management bytes
   of the change are the counters' growth minus the heartbeats' share;
3. a live migration of a 64 MiB VM esx01 -> esx02: bytes on the management
   adapters (its control connection and tickets) against bytes on the vMotion
   adapters (the memory).

The lab is `vmkl-bml<pid>.*`; it goes down in a `finally`.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from vmknet.dataplane import naming
from vmknet.inventory import Inventory
from vmknet.lab import lifecycle
from vmknet.lab.realise import KernelRealiser
from vmknet.mgmt import paths
from vmknet.model import Datacenter, Service
from vmknet.processes import lab_pids
from vmknet.state import load_file

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "lab.yaml"
HOSTS = ("esx01", "esx02", "esx03")
OVERHEAD_AIM = 1.2


@dataclass
class Results:
    idle_rate: float = 0.0  # management bytes/s at rest
    agents: list[float] = field(default_factory=list)  # seconds per change
    direct: list[float] = field(default_factory=list)
    one_by_one: list[float] = field(default_factory=list)  # through the agents, 1 at a time
    agent_bytes: list[float] = field(default_factory=list)  # management bytes per change
    direct_bytes: list[float] = field(default_factory=list)
    vmotion_mgmt: float = 0.0
    vmotion_memory: float = 0.0
    vmotion_seconds: float = 0.0


def counters(lab: str, dc: Datacenter, service: Service) -> int:
    """rx + tx bytes of every adapter of `service` on every host."""
    total = 0
    for host in HOSTS:
        h = dc.host(host)
        for vmk in h.vmknics_with(service):
            ns = naming.stack_ns(lab, host, h.vmknics[vmk].netstack)
            out = subprocess.run(["ip", "-n", ns, "-j", "-s", "link", "show", vmk],
                                 capture_output=True, text=True, check=True).stdout
            stats = json.loads(out)[0]["stats64"]
            total += int(stats["rx"]["bytes"]) + int(stats["tx"]["bytes"])
    return total


def with_mtu(dc: Datacenter, mtu: int) -> Datacenter:
    new = dc.model_copy(deep=True)
    for host in HOSTS:
        new.hosts[host].vmknics["vmk3"].mtu = mtu
    return new


def change(inv: Inventory, lab: str, mtu: int, through_agents: bool, idle_rate: float,
           max_unavailable: str = "100%") -> tuple[float, float]:
    """(seconds, management bytes beyond the heartbeats) of one change to every host."""
    realiser = inv.realiser
    assert isinstance(realiser, KernelRealiser)
    realiser.use_agents = through_agents
    realiser.max_unavailable = max_unavailable
    desired = with_mtu(inv.read(), mtu)
    before = counters(lab, desired, Service.MANAGEMENT)
    # The direct path is the one before there were agents: they are held still meanwhile,
    # else a reconcile pass (the store not committed yet) may put the old MTU back.
    held = [] if through_agents else lab_pids(paths.AGENT_MARKER, lab)
    for pid in held:
        os.kill(pid, signal.SIGSTOP)
    try:
        start = time.perf_counter()
        inv.apply(desired)
        took = time.perf_counter() - start
    finally:
        for pid in held:
            os.kill(pid, signal.SIGCONT)
    grew = counters(lab, desired, Service.MANAGEMENT) - before
    if through_agents:
        done = realiser.last
        assert done is not None and done.rollout is not None, "the change did not roll out"
    return took, max(0.0, grew - idle_rate * took)


def vmknet(store: Path, *args: str) -> None:
    subprocess.run([sys.executable, "-m", "vmknet.cli.main", "--store", str(store), *args],
                   check=True, stdout=subprocess.DEVNULL)


def migration(store: Path, lab: str, dc: Datacenter, idle_rate: float, r: Results) -> None:
    vmknet(store, "vm", "create", "bench01", "-H", "esx01", "--memory", "64MiB",
           "--dirty-rate", "1MB/s")
    mgmt, memory = counters(lab, dc, Service.MANAGEMENT), counters(lab, dc, Service.VMOTION)
    start = time.perf_counter()
    vmknet(store, "vmotion", "bench01", "--to", "esx02")
    r.vmotion_seconds = time.perf_counter() - start
    r.vmotion_mgmt = max(0.0, counters(lab, dc, Service.MANAGEMENT) - mgmt
                         - idle_rate * r.vmotion_seconds)
    r.vmotion_memory = counters(lab, dc, Service.VMOTION) - memory
    vmknet(store, "vm", "destroy", "bench01")


def run(repeat: int, idle: float) -> Results:
    r = Results()
    lab = f"bml{os.getpid()}"
    with tempfile.TemporaryDirectory(prefix="vmknet-bml-") as tmp:
        store = Path(tmp) / "inventory.db"
        inv = Inventory.open(store)
        try:
            lifecycle.up(inv, EXAMPLE, lab)
            dc = load_file(EXAMPLE)
            time.sleep(2.0)  # every agent past its first heartbeats
            before = counters(lab, dc, Service.MANAGEMENT)
            time.sleep(idle)
            r.idle_rate = (counters(lab, dc, Service.MANAGEMENT) - before) / idle
            for i in range(repeat):
                for through_agents, times, sizes in ((True, r.agents, r.agent_bytes),
                                                     (False, r.direct, r.direct_bytes)):
                    mtu = 8000 if (2 * i + (not through_agents)) % 2 == 0 else 1500
                    took, size = change(inv, lab, mtu, through_agents, r.idle_rate)
                    times.append(took)
                    sizes.append(size)
                mtu = 8000 if i % 2 == 0 else 1500  # the default is back at 1500 after a pair
                r.one_by_one.append(change(inv, lab, mtu, True, r.idle_rate, "1")[0])
                change(inv, lab, 1500 if mtu == 8000 else 8000, False, r.idle_rate)
            migration(store, lab, dc, r.idle_rate, r)
        finally:
            lifecycle.down(inv, lab)
    return r


def med(xs: Iterable[float]) -> float:
    return statistics.median(list(xs))


def report(r: Results) -> str:
    ratio = med(r.agents) / med(r.direct)
    verdict = "ok" if ratio <= OVERHEAD_AIM else "OVER"
    lines = [
        "management plane in the lab (examples/lab.yaml: 3 hosts, one agent each)",
        f"  at rest (heartbeats, 3 hosts x 1 management link)  {r.idle_rate:8.0f} B/s",
        "one change to every host (vmk3 MTU), median of "
        f"{len(r.agents)} each, end to end (Inventory.apply):",
        f"  through the agents, all hosts at once     {med(r.agents) * 1000:8.1f} ms   "
        f"management bytes {med(r.agent_bytes):8.0f}",
        f"  through the agents, one host at a time    {med(r.one_by_one) * 1000:8.1f} ms",
        f"  direct (one apply here, REQ-5 echo)       {med(r.direct) * 1000:8.1f} ms   "
        f"management bytes {med(r.direct_bytes):8.0f}",
        f"  agents / direct                           {ratio:8.2f}x  "
        f"aim <= {OVERHEAD_AIM}x: {verdict}",
        f"live migration of 64 MiB esx01 -> esx02 in {r.vmotion_seconds:.2f} s:",
        f"  management adapters  {r.vmotion_mgmt:12.0f} B   (control, ticket, beyond heartbeats)",
        f"  vMotion adapters     {r.vmotion_memory:12.0f} B   "
        f"({r.vmotion_mgmt / max(r.vmotion_memory, 1) * 100:.3f}% of it on management)",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--smoke", action="store_true", help="2 changes each way (CI)")
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--idle", type=float, default=5.0, help="seconds to measure heartbeats")
    args = p.parse_args(argv)
    if os.geteuid() != 0:
        print("bench_mgmt_lab: needs root (network namespaces)", file=sys.stderr)
        return 2
    r = run(2 if args.smoke else args.repeat, 2.0 if args.smoke else args.idle)
    print(report(r))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
