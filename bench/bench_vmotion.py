"""vMotion benchmark: live migration over real vMotion adapter pairs against the wire's limit.

    sudo .venv/bin/python bench/bench_vmotion.py             # everything (a few minutes)
    sudo .venv/bin/python bench/bench_vmotion.py --smoke     # 1 pair, 64 MiB (CI, < 30 s)
    sudo .venv/bin/python bench/bench_vmotion.py --pairs 1,2,4 --rate-mbit 1000 --memory 1024
    sudo .venv/bin/python bench/bench_vmotion.py --only iperf --json

The lab (bench/vmotion_lab.py) is two hosts with K vMotion adapters each on
the `vmotion` stack, one port group and one active uplink per adapter (SW-6),
brought up in network namespaces with `vmknet.lab.lifecycle.up`. Every number
is a ratio against a limit measured or computed in the same run:

1. `single`: one migration over one adapter pair (NIC speed `--single-mbit`,
   default ESXi's 10000) against `iperf3` over the same pair: iperf3 -s in
   the target's vmotion stack namespace bound to the target adapter, iperf3 -c
   in the source's, bound to the source adapter. Aim >= 0.9.
2. `aggregate`: the same with 1, 2, 4 pairs (`--pairs`), every vMotion uplink
   rate-limited to `--rate-mbit` (a tbf on each wire), against the sum of the
   limits; iperf3 on every pair at once for reference. Aim >= 0.9.
3. `dirty`: total time and downtime of a `--memory` MiB VM at dirty rates
   0, 10, 50, 100 MB/s over one rate-limited pair. Total time against the
   pre-copy bound memory / (link - dirty rate) (link = iperf3 of that pair);
   downtime against the switchover target.
4. `crypto`: the same migration with encryption `required` vs `disabled`, and
   one core's AES-256-GCM rate (cryptography's AESGCM on 1 MiB chunks).
5. `qemu`: the peer, QEMU's own live migration (qemu-system-x86, TCG, the same
   memory size, RAM of random bytes) over the same adapter pair in the same run,
   one channel and multifd with 4 (bench/qemu_peer.py); the single part's
   migration against the faster of the two. Aim >= 1.5. The bench installs
   qemu-system-x86 with apt-get when it is missing (`--smoke` does not: it says
   "skipped: qemu not installed").

Everything the run creates is named `vmkl-vmb<pid>.*` (namespaces) or is a child
process of this one (iperf3, VMs); all of it is removed in a `finally`, also on
Ctrl-C or SIGTERM, and the run fails if anything is left.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from qemu_peer import ensure_qemu, qemu_migrate
from vmotion_lab import LabSpec, Pair, lab_yaml, pairs

IPERF3 = "iperf3"
IPERF_PORT = 5201
REACH_TIMEOUT = 30.0  # s: adapter bridges run STP (2 x 2 s forward delay) after `lab up`
SERVER_TIMEOUT = 10.0
AIM_THROUGHPUT = 0.9
AIM_QEMU = 1.5  # one pair at 10 Gbit/s: vmknet's migration against QEMU's best
MIB = 1 << 20


# ------------------------------------------------------------------ results and the table


@dataclass
class Row:
    """One line of the table: `value` against `limit`; ratio = value / limit (or the inverse)."""

    part: str
    measure: str
    value: float
    unit: str
    limit: float | None = None
    aim: str = ""  # ">= 0.90" or "<= 1.00": the ratio's aim
    note: str = ""
    inverse: bool = False  # ratio = limit / value (times: a lower value is better)

    @property
    def ratio(self) -> float | None:
        if self.limit is None or self.limit == 0 or self.value == 0:
            return None
        return self.limit / self.value if self.inverse else self.value / self.limit

    @property
    def meets_aim(self) -> bool | None:
        ratio = self.ratio
        if ratio is None or not self.aim:
            return None
        op, _, number = self.aim.partition(" ")
        target = float(number)
        return ratio >= target if op == ">=" else ratio <= target

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "ratio": self.ratio, "meets_aim": self.meets_aim}


def fmt_value(value: float | None, unit: str) -> str:
    if value is None:
        return "-"
    if unit == "s" and value < 1:
        return f"{value * 1000:.1f} ms"
    if unit in ("s", "Mbit/s", "MB/s"):
        return f"{value:.2f} {unit}" if value < 100 else f"{value:.0f} {unit}"
    return f"{value:g} {unit}".strip()


def format_table(rows: Sequence[Row]) -> str:
    """Plain aligned text: measure, value, limit, ratio, aim, note."""
    cells = [("part", "measure", "value", "limit", "ratio", "aim", "note")]
    for r in rows:
        ratio = r.ratio
        cells.append((r.part, r.measure, fmt_value(r.value, r.unit),
                      fmt_value(r.limit, r.unit) if r.limit is not None else "-",
                      f"{ratio:.2f}" if ratio is not None else "-",
                      r.aim or "-", r.note))
    widths = [max(len(c[k]) for c in cells) for k in range(6)]
    right = {2, 3, 4}
    lines = []
    for n, c in enumerate(cells):
        parts = [c[k].rjust(widths[k]) if k in right else c[k].ljust(widths[k]) for k in range(6)]
        lines.append(("  ".join(parts) + "  " + c[6]).rstrip())
        if n == 0:
            lines.append("-" * len(lines[0]))
    return "\n".join(lines)


# ------------------------------------------------------------------ iperf3


@dataclass
class IperfResult:
    """What one iperf3 client reported (-J), from the receiver's side."""

    received_bps: float
    sent_bps: float
    seconds: float
    retransmits: int | None
    bytes: int

    @property
    def mbit(self) -> float:
        return self.received_bps / 1e6


class IperfError(RuntimeError):
    pass


def parse_iperf3(text: str) -> IperfResult:
    """The summary of an `iperf3 -c ... -J` run; IperfError on iperf3's own error or bad JSON."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        raise IperfError(f"iperf3 printed no JSON: {text.strip()[:200]!r}") from err
    if not isinstance(data, dict):
        raise IperfError("iperf3 JSON is not an object")
    if data.get("error"):
        raise IperfError(f"iperf3: {data['error']}")
    end = data.get("end") or {}
    received, sent = end.get("sum_received"), end.get("sum_sent")
    if not isinstance(received, dict) or not isinstance(sent, dict):
        raise IperfError("iperf3 JSON has no end.sum_received/sum_sent (a UDP or aborted run?)")
    retransmits = sent.get("retransmits")
    return IperfResult(
        received_bps=float(received["bits_per_second"]),
        sent_bps=float(sent["bits_per_second"]),
        seconds=float(received.get("seconds") or sent.get("seconds") or 0.0),
        retransmits=int(retransmits) if retransmits is not None else None,
        bytes=int(received.get("bytes", 0)),
    )


def ns_exec(ns: str, *argv: str) -> list[str]:
    return ["ip", "netns", "exec", ns, *argv]


class Children:
    """Every process this run starts; `stop()` ends each of them by its own id."""

    def __init__(self) -> None:
        self.procs: list[subprocess.Popen[str]] = []

    def start(self, argv: list[str]) -> subprocess.Popen[str]:
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                start_new_session=True)
        self.procs.append(proc)
        return proc

    def stop(self) -> list[int]:
        """Terminate (then kill) every child still running; the ids that had to be ended."""
        ended = []
        for proc in self.procs:
            if proc.poll() is None:
                ended.append(proc.pid)
                with contextlib.suppress(ProcessLookupError):
                    proc.terminate()
        for proc in self.procs:
            try:
                proc.communicate(timeout=3)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                proc.communicate(timeout=3)
        return ended

    def alive(self) -> list[int]:
        return [p.pid for p in self.procs if p.poll() is None]


def _listening(ns: str, port: int) -> bool:
    out = subprocess.run(ns_exec(ns, "ss", "-Hltn", f"sport = :{port}"), capture_output=True,
                         text=True, timeout=5, check=False).stdout
    return bool(out.strip())


def iperf3(children: Children, lab: str, pair_list: Sequence[Pair], seconds: float,
           ns_of: Any) -> list[IperfResult]:
    """iperf3 over every pair at once (one server and one client per pair); results in order.

    `ns_of(lab, host)` is the host's vmotion stack namespace. Each server is a
    one-off (`-1`) on port 5201 + i bound to the target adapter; each client
    is bound to the source adapter, so the stream takes exactly that pair.
    """
    servers = []
    for p in pair_list:
        port = IPERF_PORT + p.index
        servers.append(children.start(ns_exec(ns_of(lab, p.target_host), IPERF3, "-s", "-1",
                                              "-B", str(p.target), "--port", str(port))))
    deadline = time.monotonic() + SERVER_TIMEOUT
    for p, server in zip(pair_list, servers, strict=True):
        while not _listening(ns_of(lab, p.target_host), IPERF_PORT + p.index):
            if server.poll() is not None or time.monotonic() > deadline:
                _, err = server.communicate(timeout=3)
                raise IperfError(f"iperf3 server on {p.label} did not start: {err.strip()}")
            time.sleep(0.05)
    clients = [children.start(ns_exec(ns_of(lab, p.source_host), IPERF3, "-c", str(p.target),
                                      "-B", str(p.source), "--port", str(IPERF_PORT + p.index),
                                      "-t", f"{seconds:g}", "-J"))
               for p in pair_list]
    results = []
    for p, client in zip(pair_list, clients, strict=True):
        out, err = client.communicate(timeout=seconds + 30)
        try:
            results.append(parse_iperf3(out))
        except IperfError as exc:
            raise IperfError(f"{p.label}: {exc} {err.strip()[:200]}") from exc
    for server in servers:
        server.communicate(timeout=10)
    return results


# ------------------------------------------------------------------ the lab


def lab_name() -> str:
    return f"vmb{os.getpid()}"


@dataclass
class RunningLab:
    spec: LabSpec
    name: str
    inv: Any  # vmknet.inventory.Inventory
    dc: Any  # vmknet.model.Datacenter
    up_seconds: float
    reach_seconds: float
    pairs: list[Pair] = field(default_factory=list)


def wait_reachable(name: str, pair_list: Sequence[Pair], timeout: float = REACH_TIMEOUT) -> float:
    """Seconds until every pair answers an echo from its source adapter (STP forwarding)."""
    from vmknet.traffic.icmp import ping_once

    start = time.monotonic()
    waiting = list(pair_list)
    while waiting:
        waiting = [p for p in waiting
                   if not ping_once(vmotion_ns(name, p.source_host), str(p.target),
                                    source=str(p.source), timeout=0.3).received]
        if waiting and time.monotonic() - start > timeout:
            raise RuntimeError(f"no echo over {waiting[0].label} within {timeout:.0f} s")
    return time.monotonic() - start


def vmotion_ns(lab: str, host: str) -> str:
    from vmknet.dataplane import naming

    return naming.stack_ns(lab, host, "vmotion")


@contextlib.contextmanager
def running_lab(spec: LabSpec, name: str, folder: Path) -> Iterator[RunningLab]:
    """The lab of `spec` up under `name` (a fresh store in `folder`); down again afterwards."""
    from vmknet.inventory import Inventory
    from vmknet.lab import lifecycle

    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"lab-{spec.pairs}x{spec.speed_mbit}.yaml"
    path.write_text(lab_yaml(spec), encoding="utf-8")
    inv = Inventory.open(folder / f"inventory-{spec.pairs}x{spec.speed_mbit}.db")
    try:
        start = time.perf_counter()
        report = lifecycle.up(inv, path, name)
        up = time.perf_counter() - start
        pair_list = pairs(spec)
        reach = wait_reachable(name, pair_list)
        yield RunningLab(spec, name, inv, report.dc, up, reach, pair_list)
    finally:
        lifecycle.down(inv, name)


def vm_processes(name: str) -> list[int]:
    """VM processes of this run's lab still alive (found by their `--lab=` marker)."""
    from vmknet.vm import registry

    return [p for p in registry.vm_pids(name) if registry.alive(p)]


def cleanup(name: str) -> list[int]:
    """After a crash between up and down: the lab's VMs (by their lab marker) and namespaces."""
    from vmknet.dataplane.linux import LinuxBackend
    from vmknet.vm.reaper import kill_lab_vms

    killed = kill_lab_vms(name)
    LinuxBackend().cleanup(f"vmkl-{name}.")
    return killed


def leftovers(name: str) -> list[str]:
    from vmknet.dataplane.linux.netns import ETC_NETNS, listed

    prefix = f"vmkl-{name}."
    found = listed(prefix)
    if os.path.isdir(ETC_NETNS):
        found += [f"{ETC_NETNS}/{e}" for e in os.listdir(ETC_NETNS) if e.startswith(prefix)]
    return found


@contextlib.contextmanager
def interruptible() -> Iterator[None]:
    """SIGTERM raises KeyboardInterrupt like Ctrl-C, so `finally` cleans up either way."""
    def on_term(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    previous = signal.signal(signal.SIGTERM, on_term)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


# ------------------------------------------------------------------ the parts


@dataclass
class Options:
    smoke: bool = False
    memory_mib: int = 1024
    pair_counts: list[int] = field(default_factory=lambda: [1, 2, 4])
    rate_mbit: int = 1000
    single_mbit: int = 10000
    mtu: int = 9000
    iperf_seconds: float = 5.0
    dirty_rates: list[float] = field(default_factory=lambda: [0.0, 10.0, 50.0, 100.0])
    max_downtime: float = 0.1  # s: the engine's switchover target (its default)
    only: set[str] = field(default_factory=set)
    warmup: bool = True

    def wants(self, part: str) -> bool:
        return not self.only or part in self.only or self.iperf_only

    @property
    def iperf_only(self) -> bool:
        """`--only iperf`: iperf3 in every lab, no VM (usable without the engine)."""
        return self.only == {"iperf"}


def iperf_rows(part: str, lab: RunningLab, results: Sequence[IperfResult]) -> list[Row]:
    rows = []
    limit = lab.spec.speed_mbit
    k = f"{lab.spec.pairs} pairs: " if part == "aggregate" else ""
    for p, r in zip(lab.pairs, results, strict=True):
        rows.append(Row(part, f"{k}iperf3 {p.label}", r.mbit, "Mbit/s", float(limit), "",
                        f"NIC {limit} Mbit/s, MTU {lab.spec.mtu}, "
                        f"{r.retransmits if r.retransmits is not None else '?'} retransmits"))
    return rows


def iperf_reference(lab: RunningLab, children: Children, seconds: float) -> list[IperfResult]:
    """iperf3 over every pair of the lab at once: the measured capacity of each pair."""
    return iperf3(children, lab.name, lab.pairs, seconds, vmotion_ns)


def migrate_once(lab: RunningLab, vm: str, memory_mib: int, dirty_mb: float = 0.0, *,
                 encryption: str = "disabled", max_downtime: float = 0.1) -> Any:
    """Boot `vm` on the first host, live-migrate it to the second, destroy it: the report."""
    from vmknet.vm import manage
    from vmknet.vmotion import migrate

    source, target = lab.pairs[0].source_host, lab.pairs[0].target_host
    manage.create(lab.dc, lab.name, vm, source, memory=memory_mib * MIB,
                  dirty_rate=int(dirty_mb * 1e6))
    try:
        report = migrate(lab.dc, lab.name, vm, target, max_downtime=max_downtime,
                         encryption=encryption)
    finally:
        with contextlib.suppress(Exception):
            manage.destroy(lab.name, vm)
    if not report.completed:
        raise RuntimeError(f"migration of {vm} aborted: {report.code}: {report.reason}"
                           f"{vm_log_tail(lab.name, vm)}")
    return report


def vm_log_tail(lab: str, vm: str, lines: int = 3) -> str:
    """The last lines of a VM process's log (where a crashed VM said why), or ''."""
    from vmknet.vm import registry

    path = registry.vms_dir(lab) / f"{vm}.log"
    try:
        tail = path.read_text(errors="replace").strip().splitlines()[-lines:]
    except OSError:
        return ""
    return f" (VM log: {' | '.join(tail)})" if tail else ""


def pair_mbit(stat: Any) -> float:
    """Throughput of one adapter pair of a migration report, Mbit/s (its bytes / its time)."""
    return float(stat.bytes) * 8 / float(stat.seconds) / 1e6 if stat.seconds else 0.0


def busy_mbit(report: Any) -> float:
    """Throughput of a whole migration over its rounds (all pairs), Mbit/s."""
    busy = sum(r.seconds for r in report.rounds)
    return float(report.bytes) * 8 / busy / 1e6 if busy else 0.0


def report_note(report: Any) -> str:
    down = report.downtime_ms if report.downtime_ms is not None else float("nan")
    return (f"{len(report.rounds)} rounds, {report.bytes / MIB:.0f} MiB sent, total "
            f"{report.total_seconds:.2f} s, downtime {down:.0f} ms")


def part_single(lab: RunningLab, ref: Sequence[IperfResult], opts: Options) -> tuple[list[Row],
                                                                                       Any]:
    report = migrate_once(lab, "vmb-single", opts.memory_mib, max_downtime=opts.max_downtime)
    stat, p = report.pairs[0], lab.pairs[0]
    row = Row("single", f"migration {p.label}", pair_mbit(stat), "Mbit/s", ref[0].mbit,
              f">= {AIM_THROUGHPUT:.2f}", f"vs iperf3 same pair; {report_note(report)}")
    return [row], report


def part_aggregate(lab: RunningLab, ref: Sequence[IperfResult], opts: Options,
                   done: Any | None = None) -> list[Row]:
    """`done`: a plain dirty-0 migration of this lab already made (the single part's)."""
    k = lab.spec.pairs
    limit = float(k * lab.spec.speed_mbit)
    report = done or migrate_once(lab, f"vmb-agg{k}", opts.memory_mib,
                                  max_downtime=opts.max_downtime)
    rows = []
    for p, stat, r in zip(lab.pairs, report.pairs, ref, strict=True):
        rows.append(Row("aggregate", f"{k} pairs: {p.label}", pair_mbit(stat), "Mbit/s", r.mbit,
                        "", f"vs iperf3 of this pair; {stat.bytes / MIB:.0f} MiB"))
    rows.append(Row("aggregate", f"{k} pairs: iperf3 sum", sum(r.mbit for r in ref), "Mbit/s",
                    limit, "", f"{k} x {lab.spec.speed_mbit} Mbit/s, all pairs at once"))
    rows.append(Row("aggregate", f"{k} pairs: migration", busy_mbit(report), "Mbit/s", limit,
                    f">= {AIM_THROUGHPUT:.2f}", f"vs sum of NIC limits; {report_note(report)}"))
    return rows


def part_dirty(lab: RunningLab, ref: Sequence[IperfResult], opts: Options) -> list[Row]:
    link = ref[0].received_bps / 8  # bytes/s the pair carries (iperf3, same run)
    rows = []
    for rate in opts.dirty_rates:
        report = migrate_once(lab, f"vmb-dirty{int(rate)}", opts.memory_mib, rate,
                              max_downtime=opts.max_downtime)
        first = report.rounds[0].bytes  # the populated memory, sent once
        once = first / link
        label = f"{opts.memory_mib} MiB at {rate:g} MB/s"
        throttled = "; SDPS throttled" if report.throttled else ""
        rows.append(Row("dirty", f"total time, {label}", report.total_seconds, "s", once,
                        f">= {AIM_THROUGHPUT:.2f}" if rate == 0 else "",
                        f"limit = non-zero memory ({first / MIB:.0f} MiB) once at iperf3 rate; "
                        f"{len(report.rounds)} rounds, {report.bytes / first:.2f}x memory sent"
                        f"{throttled}", inverse=True))
        down = (report.downtime_ms or 0.0) / 1000
        rows.append(Row("dirty", f"downtime, {label}", down, "s", report.max_downtime_ms / 1000,
                        "<= 1.00", downtime_note(report)))
    return rows


def downtime_note(report: Any) -> str:
    """Predicted downtime, last round and the verify after resume (not part of the downtime)."""
    predicted = getattr(report, "predicted_downtime_ms", None)
    verify = getattr(report, "verify_ms", None)
    return (f"predicted {predicted:.0f} ms; " if predicted is not None else "") + (
        f"last round {report.rounds[-1].bytes / MIB:.1f} MiB; after resume (not downtime): "
        f"source verify hash {report.digest_ms:.0f} ms" + (
            f", verified {verify:.0f} ms after resume" if verify is not None else ""))


def part_crypto(lab: RunningLab, opts: Options, plain: Any | None) -> list[Row]:
    if plain is None:
        plain = migrate_once(lab, "vmb-plain", opts.memory_mib, max_downtime=opts.max_downtime)
    sealed = migrate_once(lab, "vmb-aes", opts.memory_mib, encryption="required",
                          max_downtime=opts.max_downtime)
    if not sealed.encrypted:
        raise RuntimeError(f"encryption required but not used: {sealed.encryption_note}")
    rate = aes_gcm_rate(0.5 if opts.smoke else 2.0)
    p = lab.pairs[0]
    share = sealed.crypto_seconds / max(sealed.pairs[0].seconds, 1e-9)
    return [
        Row("crypto", f"encrypted migration {p.label}", pair_mbit(sealed.pairs[0]), "Mbit/s",
            pair_mbit(plain.pairs[0]), f">= {AIM_THROUGHPUT:.2f}",
            f"required vs disabled, same pair; {sealed.cipher}, sealing "
            f"{share:.0%} of stream time"),
        Row("crypto", "AES-256-GCM, 1 MiB chunks, 1 core", rate * 8, "Mbit/s",
            pair_mbit(plain.pairs[0]), "", f"{rate:.0f} MB/s; limit = the plain migration"),
    ]


def part_qemu(lab: RunningLab, ref: Sequence[IperfResult], opts: Options, plain: Any | None,
              children: Children, folder: Path) -> list[Row]:
    """QEMU's migration over the first pair, 1 channel and multifd 4, against ours."""
    p = lab.pairs[0]
    skipped = ensure_qemu(install=not opts.smoke)
    if skipped:
        return [Row("qemu", "QEMU live migration", 0.0, "Mbit/s", None, "", skipped)]
    if plain is None:
        plain = migrate_once(lab, "vmb-plain", opts.memory_mib, max_downtime=opts.max_downtime)
    rows, best = [], 0.0
    for channels in (1, 4):
        q = qemu_migrate(children, vmotion_ns(lab.name, p.source_host),
                         vmotion_ns(lab.name, p.target_host), str(p.target), opts.memory_mib,
                         folder / "qemu", channels=channels)
        best = max(best, q.mbit)
        what = "1 channel" if channels == 1 else f"multifd {channels} channels"
        rows.append(Row("qemu", f"QEMU {what} {p.label}", q.mbit, "Mbit/s", ref[0].mbit, "",
                        f"vs iperf3 same pair; TCG, {opts.memory_mib} MiB random RAM, "
                        f"{q.transferred / MIB:.0f} MiB sent, total {q.total_ms / 1000:.2f} s, "
                        f"downtime {q.downtime_ms:.0f} ms"))
    ours = busy_mbit(plain)
    rows.append(Row("qemu", f"vmknet vs QEMU's best {p.label}", ours, "Mbit/s", best,
                    f">= {AIM_QEMU:.2f}", f"the single part's migration ({report_note(plain)}) "
                    f"against the faster QEMU row"))
    return rows


def warm_up(mib: int) -> float:
    """Touch `mib` MiB once and free it; seconds taken.

    On a VM (this bench's machine is one) the first touch of guest-physical memory
    is far dearer than later ones (the hypervisor backs it on demand): the first
    migration of a run would pay for it in its target's page faults, the later ones
    not. Touching the memory of a source and a target VM once beforehand makes every
    migration of the run see the same machine.
    """
    import mmap

    import numpy as np

    start = time.perf_counter()
    buf = mmap.mmap(-1, mib * MIB)
    try:
        np.frombuffer(buf, dtype=np.uint8)[:] = 1
    finally:
        buf.close()
    return time.perf_counter() - start


def lab_jobs(opts: Options) -> dict[LabSpec, list[str]]:
    """Which parts run in which lab (a lab is brought up once for all of its parts)."""
    jobs: dict[LabSpec, list[str]] = {}
    single = LabSpec(pairs=1, speed_mbit=opts.single_mbit, mtu=opts.mtu)
    for part in ("single", "crypto", "qemu"):
        if opts.wants(part):
            jobs.setdefault(single, []).append(part)
    if opts.wants("aggregate"):
        for k in opts.pair_counts:
            jobs.setdefault(LabSpec(pairs=k, speed_mbit=opts.rate_mbit, mtu=opts.mtu),
                            []).append("aggregate")
    if opts.wants("dirty"):
        jobs.setdefault(LabSpec(pairs=1, speed_mbit=opts.rate_mbit, mtu=opts.mtu),
                        []).append("dirty")
    return jobs


def run_lab(spec: LabSpec, parts: list[str], opts: Options, children: Children, folder: Path,
            name: str, failures: list[str]) -> list[Row]:
    """Every part of one lab; a part that fails is recorded in `failures`, the rest go on."""
    rows: list[Row] = []
    with running_lab(spec, name, folder) as lab:
        print(f"lab {spec.pairs} pair(s) x {spec.speed_mbit} Mbit/s, MTU {spec.mtu}: up in "
              f"{lab.up_seconds:.1f} s, pairs answer after {lab.reach_seconds:.1f} s; "
              f"{', '.join(parts)}", file=sys.stderr, flush=True)
        ref = iperf_reference(lab, children, opts.iperf_seconds)
        part = "single" if "single" in parts else parts[0]
        rows += iperf_rows(part, lab, ref)
        if opts.iperf_only:
            return rows
        plain = None
        for part in parts:
            try:
                if part == "single":
                    got, plain = part_single(lab, ref, opts)
                    rows += got
                elif part == "aggregate":
                    rows += part_aggregate(lab, ref, opts, plain)
                elif part == "dirty":
                    rows += part_dirty(lab, ref, opts)
                elif part == "crypto":
                    rows += part_crypto(lab, opts, plain)
                elif part == "qemu":
                    rows += part_qemu(lab, ref, opts, plain, children, folder)
            except Exception as err:  # one part's failure must not lose the others' rows
                failures.append(f"{part} ({spec.pairs} pair(s) x {spec.speed_mbit} Mbit/s): "
                                f"{type(err).__name__}: {err}")
                print(f"FAILED {failures[-1]}", file=sys.stderr, flush=True)
    return rows


def aes_gcm_rate(seconds: float = 1.0, chunk: int = MIB) -> float:
    """MB/s one core encrypts with AES-256-GCM (cryptography's AESGCM) in `chunk`-byte calls."""
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    aead = AESGCM(AESGCM.generate_key(bit_length=256))
    data = os.urandom(chunk)
    nonce = 0
    done = 0
    start = time.perf_counter()
    while (elapsed := time.perf_counter() - start) < seconds or nonce < 3:
        aead.encrypt(nonce.to_bytes(12, "big"), data, None)
        nonce += 1
        done += chunk
    return done / elapsed / 1e6


# ------------------------------------------------------------------ main


def parse_args(argv: list[str] | None) -> tuple[Options, bool]:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--smoke", action="store_true",
                        help="1 pair, 64 MiB, one dirty rate, short iperf3 (CI)")
    parser.add_argument("--memory", type=int, default=1024, help="VM memory, MiB")
    parser.add_argument("--pairs", default="1,2,4", help="vMotion adapter pair counts")
    parser.add_argument("--rate-mbit", type=int, default=1000,
                        help="NIC speed of each vMotion uplink in the aggregate/dirty parts")
    parser.add_argument("--single-mbit", type=int, default=10000,
                        help="NIC speed of the single-pair part (ESXi's default 10000)")
    parser.add_argument("--mtu", type=int, default=9000)
    parser.add_argument("--iperf-seconds", type=float, default=5.0)
    parser.add_argument("--dirty", default="0,10,50,100", help="dirty rates, MB/s")
    parser.add_argument("--max-downtime", type=float, default=0.1,
                        help="switchover target, s (the engine's default 0.1)")
    parser.add_argument("--only", default="",
                        help="comma-separated parts: iperf,single,aggregate,dirty,crypto,qemu")
    parser.add_argument("--no-warmup", action="store_true",
                        help="skip touching 2 x --memory once before measuring")
    parser.add_argument("--json", action="store_true", help="print the rows as JSON")
    args = parser.parse_args(argv)
    opts = Options(
        memory_mib=args.memory, pair_counts=[int(x) for x in args.pairs.split(",") if x.strip()],
        rate_mbit=args.rate_mbit, single_mbit=args.single_mbit, mtu=args.mtu,
        iperf_seconds=args.iperf_seconds, max_downtime=args.max_downtime,
        dirty_rates=[float(x) for x in args.dirty.split(",") if x.strip()],
        only={x.strip() for x in args.only.split(",") if x.strip()},
        warmup=not args.no_warmup,
    )
    if args.smoke:
        opts.smoke, opts.memory_mib, opts.pair_counts = True, 64, [1]
        opts.iperf_seconds, opts.dirty_rates = 2.0, [10.0]
        opts.single_mbit = opts.rate_mbit  # one lab for every part
    return opts, args.json


def machine() -> dict[str, Any]:
    return {"kernel": os.uname().release, "cores": os.cpu_count(),
            "python": sys.version.split()[0]}


def main(argv: list[str] | None = None) -> int:
    opts, as_json = parse_args(argv)
    if os.geteuid() != 0:
        print("bench_vmotion needs root (it builds network namespaces)", file=sys.stderr)
        return 2
    name = lab_name()
    children = Children()
    rows: list[Row] = []
    failures: list[str] = []
    start = time.perf_counter()
    try:
        with interruptible(), tempfile.TemporaryDirectory(prefix="vmknet-vmb-") as tmp:
            if opts.warmup and not opts.iperf_only:
                took = warm_up(2 * opts.memory_mib + 256)
                print(f"warm-up: touched {2 * opts.memory_mib + 256} MiB in {took:.1f} s",
                      file=sys.stderr, flush=True)
            for spec, parts in lab_jobs(opts).items():
                rows += run_lab(spec, parts, opts, children, Path(tmp), name, failures)
    finally:
        ended = children.stop()
        ended += cleanup(name)
        left = leftovers(name)
        alive = children.alive() + vm_processes(name)
    return finish(rows, failures, time.perf_counter() - start, as_json, ended=ended,
                  left=left, alive=alive,
                  clean=f"no vmkl-{name}.* namespace, no child process left")


def finish(rows: list[Row], failures: list[str], took: float, as_json: bool, *,
           ended: list[int], left: list[str], alive: list[int], clean: str) -> int:
    """Print the table (or JSON) and what was left behind; the exit status of a bench run."""
    if as_json:
        print(json.dumps({"machine": machine(), "seconds": took, "failures": failures,
                          "rows": [r.as_dict() for r in rows]}, indent=2))
    else:
        m = machine()
        print(f"kernel {m['kernel']}, {m['cores']} cores, Python {m['python']}; {took:.1f} s")
        print(format_table(rows))
    if ended:
        print(f"ended leftover child processes: {ended}", file=sys.stderr)
    if left or alive:
        print(f"LEFT BEHIND: {left}, processes {alive}", file=sys.stderr)
        return 1
    if not as_json:
        print(f"clean: {clean}")
    for failure in failures:
        print(f"FAILED {failure}", file=sys.stderr)
    if failures:
        return 1
    missed = [f"{r.part} {r.measure}" for r in rows if r.meets_aim is False]
    if missed:
        print(f"below the aim: {', '.join(missed)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
