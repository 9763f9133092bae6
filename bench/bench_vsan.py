"""vSAN benchmark: the vsanDatastore's mirrored I/O against the vSAN network's own limit.

    sudo .venv/bin/python bench/bench_vsan.py               # 512 MiB per run, 1000 Mbit/s
    sudo .venv/bin/python bench/bench_vsan.py --smoke       # 48 MiB, short iperf3 (< 60 s)
    sudo .venv/bin/python bench/bench_vsan.py --rate-mbit 10000 --size 256 [--json]

The lab is examples/vsan-lab.yaml (four hosts, vSAN adapter vmk1 on its own uplink
vmnic2 at `--rate-mbit`, a tbf on its wire, MTU 9000), one vSAN node per host. One
FTT=1 object: replicas on A and B, the witness on C, and D holds nothing of it.
Every number is measured in the same run as its limit:

1. `write A`: a VM on replica host A writes the object sequentially (4 MiB writes, each
   acknowledged when both replicas hold it durably): its bytes go A -> B once; limit
   iperf3 A -> B over the same vmk1 pair. Aim >= 0.8.
2. `write D`: the same from D (no replica there): every byte goes D -> A and D -> B at
   once over D's one vSAN uplink; wire bytes (2x) against iperf3 D -> A and D -> B run
   at the same time. Aim >= 0.8.
3. `read`: sequential reads from A (its own replica: the file) and from D (over the vSAN
   network from one replica); remote against iperf3 A -> D. Aim >= 0.8 for remote.
4. `pause`: D writes 256 KiB pieces while B's node is killed: the longest gap between
   two acknowledgements. Aim <= 2 s (vSAN pauses about 5 to 7 s).
5. `resync`: `--resync` MiB written while B is away, then B returns: the bytes copied
   (only what changed) and their rate against iperf3 A -> B.

Everything the run creates is named `vmkl-vsb<pid>.*` (namespaces), is a child of this
process (iperf3, the vSAN nodes), or lives in one temporary directory; it is all removed
in a `finally`, and the run fails if a namespace is left.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_vmotion import (
    IPERF3,
    IPERF_PORT,
    SERVER_TIMEOUT,
    Children,
    IperfError,
    Row,
    _listening,
    format_table,
    leftovers,
    ns_exec,
    parse_iperf3,
)

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "vsan-lab.yaml"
MIB = 1 << 20
CHUNK = 4 * MIB
PIECE = 256 << 10
AIM = ">= 0.8"
ADDRESS = {"esx01": "198.18.50.11", "esx02": "198.18.50.12", "esx03": "198.18.50.13",
           "esx04": "198.18.50.14"}
STACK = "defaultTcpipStack"


@dataclass(frozen=True)
class Options:
    size_mib: int
    rate_mbit: int
    iperf_seconds: float
    resync_mib: int
    as_json: bool


def parse_args(argv: list[str] | None) -> Options:
    a = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    a.add_argument("--smoke", action="store_true", help="small sizes, short iperf3")
    a.add_argument("--size", type=int, default=None, help="MiB written and read per run")
    a.add_argument("--rate-mbit", type=int, default=1000, help="the vSAN uplinks' speed")
    a.add_argument("--json", action="store_true", help="print the rows as JSON")
    o = a.parse_args(argv)
    size = o.size or (48 if o.smoke else 512)
    if not 8 <= size <= 4096 or not 10 <= o.rate_mbit <= 100000:
        a.error("--size 8..4096 MiB, --rate-mbit 10..100000")
    return Options(size, o.rate_mbit, 1.0 if o.smoke else 5.0, 16 if o.smoke else 128,
                   o.json)


def lab_text(rate: int, size_mib: int) -> str:
    text = EXAMPLE.read_text("utf-8").replace("vmnic2: {mtu: 9000}",
                                              f"vmnic2: {{mtu: 9000, speed: {rate}}}")
    capacity = max(1024, 2 * size_mib)
    return text + f"    vsanConfig: {{capacity: {capacity}MiB, repairDelay: 3600}}\n"


def iperf_pairs(children: Children, lab: str, pairs: Sequence[tuple[str, str]],
                seconds: float) -> list[float]:
    """iperf3 over each (source host, target host) vmk1 pair at once; Mbit/s of each."""
    from vmknet.traffic.place import stack_ns

    servers = []
    for i, (_src, dst) in enumerate(pairs):
        servers.append(children.start(ns_exec(stack_ns(lab, dst, STACK), IPERF3, "-s", "-1",
                                              "-B", ADDRESS[dst], "--port",
                                              str(IPERF_PORT + i))))
    deadline = time.monotonic() + SERVER_TIMEOUT
    for i, (_src, dst) in enumerate(pairs):
        while not _listening(stack_ns(lab, dst, STACK), IPERF_PORT + i):
            if time.monotonic() > deadline:
                raise IperfError(f"iperf3 server on {dst} did not start")
            time.sleep(0.05)
    clients = [children.start(ns_exec(stack_ns(lab, src, STACK), IPERF3, "-c", ADDRESS[dst],
                                      "-B", ADDRESS[src], "--port", str(IPERF_PORT + i),
                                      "-t", f"{seconds:g}", "-J"))
               for i, (src, dst) in enumerate(pairs)]
    out = []
    for client in clients:
        text, _ = client.communicate(timeout=seconds + 30)
        out.append(parse_iperf3(text).mbit)
    for server in servers:
        server.communicate(timeout=10)
    return out


def mbit(nbytes: float, seconds: float) -> float:
    return nbytes * 8 / seconds / 1e6


def write_all(disk: Any, size: int) -> float:
    data = os.urandom(CHUNK)
    t0 = time.perf_counter()
    for off in range(0, size, CHUNK):
        disk.write(off, data)
    disk.flush()
    return time.perf_counter() - t0


def read_all(disk: Any, size: int) -> float:
    t0 = time.perf_counter()
    for off in range(0, size, CHUNK):
        disk.read(off, CHUNK)
    return time.perf_counter() - t0


def wait(what: str, check: Any, limit: float) -> float:
    t0 = time.monotonic()
    while not check():
        if time.monotonic() - t0 > limit:
            raise RuntimeError(f"{what}: not within {limit:g} s")
        time.sleep(0.05)
    return time.monotonic() - t0


def run(opts: Options, folder: Path, children: Children, name: str) -> list[Row]:
    from vmknet.inventory import Inventory
    from vmknet.lab import lifecycle
    from vmknet.traffic.icmp import ping_once
    from vmknet.traffic.place import stack_ns
    from vmknet.vsan import directory, objects, open_object, procs
    from vmknet.vsan.objects import node_states

    path = folder / "vsan-lab.yaml"
    path.write_text(lab_text(opts.rate_mbit, opts.size_mib), encoding="utf-8")
    inv = Inventory.open(folder / "inventory.db")
    rows: list[Row] = []
    try:
        lifecycle.up(inv, path, name)
        hosts = sorted(ADDRESS)
        for src in hosts:  # STP forwarding on every vSAN segment
            for dst in hosts:
                if src != dst:
                    wait(f"echo {src} -> {dst}", lambda s=src, d=dst: ping_once(
                        stack_ns(name, s, STACK), ADDRESS[d], source=ADDRESS[s],
                        timeout=0.3).received, 30)
        dc = inv.read()
        procs.start(dc, name, "cl01")
        wait("membership", lambda: all(s["partition"] == hosts for s in
                                       node_states(name, hosts).values())
             and len(node_states(name, hosts)) == 4, 15)
        size = opts.size_mib * MIB
        meta = objects.create(dc, name, "cl01", "bench", size, 1)
        a, b = (c.host for c in meta.replicas())
        d = next(h for h in hosts if h not in {c.host for c in meta.components})
        r = opts.rate_mbit
        note = f"{opts.size_mib} MiB, 4 MiB writes, links {r} Mbit/s"

        ab = iperf_pairs(children, name, [(a, b)], opts.iperf_seconds)[0]
        with open_object(name, a, meta.uuid) as disk:
            secs = write_all(disk, size)
        rows.append(Row("write A", f"mirrored write from replica host {a} -> {b}",
                        mbit(size, secs), "Mbit/s", ab, AIM, note))
        da, db = iperf_pairs(children, name, [(d, a), (d, b)], opts.iperf_seconds)
        with open_object(name, d, meta.uuid) as disk:
            secs = write_all(disk, size)
        rows.append(Row("write D", f"mirrored write from {d} (no replica): wire to {a}+{b}",
                        mbit(2 * size, secs), "Mbit/s", da + db, AIM,
                        f"{note}; logical {mbit(size, secs):.0f} Mbit/s"))
        ad = iperf_pairs(children, name, [(a, d)], opts.iperf_seconds)[0]
        with open_object(name, a, meta.uuid) as disk:
            local = read_all(disk, size)
        with open_object(name, d, meta.uuid) as disk:
            remote = read_all(disk, size)
        rows.append(Row("read", f"remote read on {d} from {a}", mbit(size, remote), "Mbit/s",
                        ad, AIM, f"local read on {a}: {mbit(size, local):.0f} Mbit/s "
                                 f"({remote / local:.1f}x the remote time)"))
        rows += pause_and_resync(name, dc, meta, a, b, d, opts, ab, directory, procs,
                                 open_object, node_states)
        objects.delete(dc, name, meta)
    finally:
        procs.stop(name)
        lifecycle.down(inv, name)
    return rows


def pause_and_resync(name: str, dc: Any, meta: Any, a: str, b: str, d: str, opts: Options,
                     ab: float, directory: Any, procs: Any, open_object: Any,
                     node_states: Any) -> list[Row]:
    acks: list[float] = []
    stop = threading.Event()
    errors: list[BaseException] = []
    resync = opts.resync_mib * MIB

    def writer(disk: Any) -> None:
        data, off = os.urandom(PIECE), 0
        try:
            while not stop.is_set():
                disk.write(off % resync, data)
                off += PIECE
                acks.append(time.monotonic())
        except BaseException as err:  # reported below
            errors.append(err)

    with open_object(name, d, meta.uuid) as disk:
        t = threading.Thread(target=writer, args=(disk,), daemon=True)
        t.start()
        wait("writes before the kill", lambda: len(acks) >= 20 or bool(errors), 20)
        killed = time.monotonic()
        procs.kill(name, b)
        wait("writes after the kill", lambda: sum(x > killed for x in acks) >= 20 or
             bool(errors), 20)
        stop.set()
        t.join(10)
        disk.write(0, os.urandom(resync))  # the whole resync region changed while away
    if errors:
        raise RuntimeError(f"writes failed on host loss: {errors[0]}")
    pause = max(y - x for x, y in itertools.pairwise(acks) if y > killed)
    rows = [Row("pause", f"I/O pause on losing replica host {b}", pause, "s", 2.0, "<= 1.0",
                "longest gap between two 256 KiB write acks", inverse=False)]
    before = node_states(name, (a,))[a]["resync"]
    t0 = time.monotonic()
    procs.start(dc, name, "cl01", [b])
    wait("healthy again", lambda: directory.load(name, meta.uuid).health() == "healthy", 120)
    secs = time.monotonic() - t0
    done = time.time()
    wait("the node's record after the resync", lambda: float(
        node_states(name, (a,))[a]["updated"]) > done, 5)
    after = node_states(name, (a,))[a]["resync"]
    copied = after["copied"] - before["copied"]
    copying = max(after["seconds"] - before["seconds"], 1e-6)
    rows.append(Row("resync", f"resync {a} -> {b} after it returned", mbit(copied, copying),
                    "Mbit/s", ab, "", f"{copied / MIB:.1f} MiB copied of "
                    f"{meta.size / MIB:.0f} MiB (changed: {opts.resync_mib} MiB); healthy "
                    f"{secs:.2f} s after the node was started"))
    return rows


def main(argv: list[str] | None = None) -> int:
    opts = parse_args(argv)
    if os.geteuid() != 0:
        print("bench_vsan needs root (namespaces)", file=sys.stderr)
        return 2
    name = f"vsb{os.getpid()}"
    children = Children()
    with tempfile.TemporaryDirectory(prefix="bench-vsan-") as tmp:
        os.environ["VMKNET_STORE"] = str(Path(tmp) / "inventory.db")
        try:
            rows = run(opts, Path(tmp), children, name)
        finally:
            children.stop()
            left = leftovers(name)
    if left:
        print(f"left behind: {left}", file=sys.stderr)
        return 1
    if opts.as_json:
        print(json.dumps([r.as_dict() for r in rows], indent=1))
    else:
        print(format_table(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
