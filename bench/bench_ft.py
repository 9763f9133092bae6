"""FT benchmark: checkpoints per second, FT logging bandwidth, guest overhead, failover time.

    sudo .venv/bin/python bench/bench_ft.py --smoke        # 10 MB/s dirty, 1 failover (< 60 s)
    sudo .venv/bin/python bench/bench_ft.py --rates 0 10 50 --memory 64 --seconds 8

Brings up a 2-host lab (bench/ft_lab.py: one FT logging adapter per host on its own
uplink), then per dirty rate: the guest's work rate unprotected (pages written per
second over `--seconds`), then protected (`ft on`, a checkpoint every 50 ms), the
checkpoints per second, bytes per checkpoint, the FT logging bandwidth (the primary's
FT adapter's tx counter) and the fraction of time the guest was paused; last, a
failover: kill -9 of the primary until the secondary is the VM in the registry.
"est. commit ms" is the latency output commit adds to a record on average, estimated
as the checkpoint time (pause to ACK) plus half an epoch (a record waits for the end of
its epoch, then for the ACK); the protected run serves an output stream.

Output commit is also measured by a client (`output_run`): it reads the VM's record
stream from the other host and timestamps each record as it arrives, while a sampler
reads the guest's produced-records counter every few ms (the VM's control socket; one
machine, one monotonic clock), which dates each record's production. A record's
latency is arrival minus production; protected (under output commit) and, after a
kill -9 of the primary, unprotected on the secondary that went live (records leave as
they are made): the difference is what output commit adds. The same client measures
failover as the outside sees it: kill -9 to the first record from the secondary, and
checks by its own record that nothing it saw is lost or repeated.

Aims (issue 12): >= 20 checkpoints/s and < 10% overhead at 10 MB/s dirty; failover
< 1 s. The lab and every VM process are removed in a `finally`.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import os
import signal
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from ft_lab import lab_yaml
from ft_output import Client, Produced, latencies, summary
from vmknet.errors import NotFound
from vmknet.ft import enable
from vmknet.inventory import Inventory
from vmknet.lab import lifecycle
from vmknet.model import DEFAULT_STACK, Datacenter
from vmknet.traffic.icmp import ping_once
from vmknet.traffic.place import stack_ns
from vmknet.traffic.stats import adapter_counters
from vmknet.vm import manage, registry
from vmknet.vm.reaper import kill_lab_vms

MiB = 1 << 20
LAB = lab_yaml([("esx01", 11, "198.18.16.11", 50), ("esx02", 12, "198.18.16.12", 50)])
REACH_TIMEOUT = 30.0  # s: the FT uplink's bridge runs STP after `lab up`
AIM_CHECKPOINTS, AIM_OVERHEAD, AIM_FAILOVER = 20.0, 0.10, 1.0
HEADER = (f"{'dirty MB/s':>10} {'ckpt/s':>7} {'kB/ckpt':>8} {'FT MB/s':>8} {'paused':>7} "
          f"{'ckpt ms':>7} {'est. commit ms':>14} {'work/s unprot':>13} {'work/s prot':>11} "
          f"{'overhead':>8}")
OUTPUT_PORT = 9100
OUTPUT_RATE = 200.0  # records/s of the VM's output stream


def work_rate(lab: str, vm: str, seconds: float) -> float:
    """Pages the guest wrote per second over `seconds`."""
    w0, t0 = int(manage.status(lab, vm)["writes"]), time.monotonic()
    time.sleep(seconds)
    return (int(manage.status(lab, vm)["writes"]) - w0) / (time.monotonic() - t0)


def reach(lab: str) -> None:
    deadline = time.monotonic() + REACH_TIMEOUT
    ns = stack_ns(lab, "esx01", DEFAULT_STACK)
    while not ping_once(ns, "198.18.16.12", timeout=0.2).ok:
        if time.monotonic() > deadline:
            raise RuntimeError("the FT logging wire does not forward")


def one_rate(dc: Datacenter, lab: str, rate: int, memory: int, seconds: float,
             encryption: str) -> str:
    vm = f"ft{rate // 1_000_000}"
    manage.create(dc, lab, vm, "esx01", memory, rate)
    time.sleep(0.5)
    unprotected = work_rate(lab, vm, seconds)
    enable.ft_on(dc, lab, vm, "esx02", output_port=OUTPUT_PORT, encryption=encryption)
    tx0 = adapter_counters(dc, lab, "esx01")["vmk2"].tx_bytes
    time.sleep(0.5)  # past the first checkpoints
    t0 = time.monotonic()
    protected = work_rate(lab, vm, seconds)
    ft = enable.ft_status(lab, vm)["primary_ft"]
    wire = (adapter_counters(dc, lab, "esx01")["vmk2"].tx_bytes - tx0) / (
        time.monotonic() - t0 + 0.5)  # after the sync round: checkpoints only
    overhead = 1 - protected / unprotected if unprotected else 0.0
    enable.ft_off(lab, vm)
    manage.destroy(lab, vm)
    return (f"{rate / 1e6:>10.0f} {ft['checkpoints_per_s']:>7.1f} "
            f"{ft['bytes_per_checkpoint'] / 1e3:>8.0f} {wire / 1e6:>8.1f} "
            f"{ft['paused_fraction']:>7.1%} {ft['checkpoint_ms']:>7.1f} "
            f"{ft['checkpoint_ms'] + ft['epoch_ms'] / 2:>14.1f} {unprotected:>13.0f} "
            f"{protected:>11.0f} {overhead:>8.1%}")


def output_run(dc: Datacenter, lab: str, rate: int, memory: int,
               seconds: float, encryption: str) -> list[str]:
    """Output commit and failover as a client on esx02 sees them (ft_output.py)."""
    rec = manage.create(dc, lab, "oc", "esx01", memory, rate)
    ft = enable.ft_on(dc, lab, "oc", "esx02", output_port=OUTPUT_PORT,
                      output_rate=OUTPUT_RATE, encryption=encryption)
    ns = stack_ns(lab, "esx02", DEFAULT_STACK)
    sampler, client = Produced(lab, "oc"), Client(ns, "198.18.0.11", OUTPUT_PORT, 0).start()
    time.sleep(seconds)
    sampler.stop()
    protected = latencies(client.arrivals, sampler.samples)
    est = enable.ft_status(lab, "oc")["primary_ft"]
    killed = time.monotonic()
    os.kill(rec.pid, signal.SIGKILL)
    registered = _registered(lab, "oc", ft.secondary_pid) - killed
    _until(lambda: client.closed is not None, "the client to see the primary go")
    client.stop()
    seen = client.next()
    after = _until(lambda: _connect(ns, seen), "the secondary to serve output").start()
    sampler = Produced(lab, "oc")
    _until(lambda: bool(after.arrivals), "the first record from the secondary")
    to_output = after.arrivals[0][1] - killed
    time.sleep(seconds)
    sampler.stop()
    after.stop()
    unprotected = latencies(after.arrivals, sampler.samples)
    mark = int(enable.ft_status(lab, "oc")["primary_ft"]["output_mark"])
    got = [n for n, _ in client.arrivals] + [n for n, _ in after.arrivals]
    lost = sum(b - a - 1 for a, b in itertools.pairwise(got) if b > a + 1)
    repeated = sum(1 for a, b in itertools.pairwise(got) if b <= a)
    held = seen <= mark  # nothing the client saw was beyond the checkpoint gone live
    pm, p50, p99 = summary(protected)
    um, u50, u99 = summary(unprotected)
    manage.destroy(lab, "oc")
    return [
        f"output commit, measured by the client ({OUTPUT_RATE:.0f} records/s, "
        f"{rate / 1e6:.0f} MB/s dirty, {len(protected)} records): mean {pm:.1f} ms, p50 "
        f"{p50:.1f}, p99 {p99:.1f} protected; unprotected {um:.1f} / {u50:.1f} / {u99:.1f} "
        f"-> output commit adds {pm - um:.1f} ms (estimate: "
        f"{est['checkpoint_ms'] + est['epoch_ms'] / 2:.1f} ms)",
        f"failover (kill -9 of the primary): secondary registered {registered * 1000:.0f} ms, "
        f"client's next record from it {to_output * 1000:.0f} ms (aim < "
        f"{AIM_FAILOVER * 1000:.0f} ms); client saw {seen} records before, all within the "
        f"checkpoint gone live: {held}; lost {lost}, repeated {repeated}"]


def _registered(lab: str, vm: str, pid: int) -> float:
    """When the registry names `pid` as the VM (time.monotonic())."""
    def probe() -> float | None:
        with contextlib.suppress(NotFound):  # between the primary's record and the secondary's
            if registry.load(lab, vm).pid == pid:
                return time.monotonic()
        return None
    return _until(probe, "the secondary to go live")


T = TypeVar("T")


def _until(probe: Callable[[], T | None], what: str, limit: float = 30.0) -> T:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        got = probe()
        if got:
            return got
        time.sleep(0.002)
    raise RuntimeError(f"no {what} within {limit:.0f} s")


def _connect(ns: str, first: int) -> Client | None:
    with contextlib.suppress(OSError):
        return Client(ns, "198.18.0.12", OUTPUT_PORT, first)
    return None


def run(folder: Path, lab: str, rates: list[int], memory: int, seconds: float,
        encryption: str) -> list[str]:
    inv = Inventory.open(folder / "inventory.db")
    (folder / "lab.yaml").write_text(LAB, encoding="utf-8")
    rows = [HEADER]
    try:
        lifecycle.up(inv, folder / "lab.yaml", lab)
        dc = inv.read()
        reach(lab)
        for rate in rates:
            rows.append(one_rate(dc, lab, rate, memory, seconds, encryption))
        rows += output_run(dc, lab, 10_000_000, memory, seconds, encryption)
    finally:
        kill_lab_vms(lab)
        lifecycle.down(inv, lab)
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="bench_ft")
    ap.add_argument("--smoke", action="store_true", help="10 MB/s, 32 MiB, 3 s (< 60 s)")
    ap.add_argument("--rates", type=float, nargs="+", default=[0.0, 10.0, 50.0],
                    help="guest dirty rates, MB/s")
    ap.add_argument("--memory", type=int, default=64, help="guest memory, MiB")
    ap.add_argument("--seconds", type=float, default=8.0, help="measuring window per rate")
    ap.add_argument("--encryption", choices=["disabled", "opportunistic", "required"],
                    default="opportunistic", help="FT encryption (SEC-1), as `ft on` takes it")
    opts = ap.parse_args(argv)
    rates = [10_000_000] if opts.smoke else [int(r * 1e6) for r in opts.rates]
    memory, seconds = (32 * MiB, 3.0) if opts.smoke else (opts.memory * MiB, opts.seconds)
    lab = f"ftb{os.getpid() % 100000}"
    with tempfile.TemporaryDirectory(prefix="vmknet-ftbench-") as tmp:
        rows = run(Path(tmp), lab, rates, memory, seconds, opts.encryption)
    print(f"FT encryption: {opts.encryption}")
    print("\n".join(rows))
    print(f"aims: >= {AIM_CHECKPOINTS:.0f} checkpoints/s, overhead < {AIM_OVERHEAD:.0%} "
          "at 10 MB/s dirty")
    return 0


if __name__ == "__main__":
    sys.exit(main())
