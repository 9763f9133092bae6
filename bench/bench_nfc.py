"""NFC benchmark: provisioning copies over one adapter pair against the wire's limit.

    sudo .venv/bin/python bench/bench_nfc.py              # 512 MiB dense, 8 GiB sparse (1 GiB data)
    sudo .venv/bin/python bench/bench_nfc.py --smoke      # 64 MiB dense, 512 MiB sparse (< 30 s)
    sudo .venv/bin/python bench/bench_nfc.py --rate-mbit 1000 --fast-mbit 0 --size 256

The lab is two hosts (esx01, esx02) with one provisioning adapter each: `vmk1`
on the vSphereProvisioning stack, 198.18.8.(10 + h)/24, on its own uplink
`vmnic1` at the NIC speed of the lab (a tbf on its wire); management vmk0 on
vSwitch0 (vmnic0 active, vmnic2 standby). Brought up with
`vmknet.lab.lifecycle.up`. Every number is a ratio against a limit measured
in the same run:

1. `dense`: copy_file of a fully written `--size` MiB disk esx01 -> esx02
   against iperf3 over the same adapter pair (iperf3 -s in esx02's
   provisioning stack namespace bound to its vmk1, -c in esx01's bound to its
   vmk1). Two rows: wire bytes / s and logical bytes / s (the time includes
   the CRC-32 digests of both sides, the fsync and the rename). Aim >= 0.9.
   Run at `--rate-mbit` (default 1000) and at `--fast-mbit` (default 10000).
2. `sparse`: copy_file of a `--sparse-size` MiB disk holding `--sparse-data`
   MiB of data against a naive full copy of the same file over the same pair:
   every byte, holes included, sendfile'd over one plain TCP connection from
   `traffic.sockets.connect(PROVISIONING)` to a `traffic.sockets.listen`
   listener on esx02 whose receiver writes it to a file. Aim >= 5x faster.
3. `rsync` (with each dense row): the same file with rsync in daemon mode
   (`rsync --daemon` in esx02's provisioning stack namespace bound to its vmk1, the
   client in esx01's bound to its vmk1, `--whole-file --sparse`), into the same
   datastore; ratio = rsync seconds / NFC seconds. Aim > 1 (NFC faster). The bench
   installs rsync with apt-get when it is missing (`--smoke`: "skipped").
4. `cold`: copy_file of the disk a cold migration of the demo's VM moves, 8 GiB
   logical holding 64 MiB of data in 1 MiB pieces, at `--fast-mbit` (else
   `--rate-mbit`). Aim < 1 s.

Everything the run creates is named `vmkl-nfb<pid>.*` (namespaces), is a child
process (iperf3) or a thread of this one (NFC server, naive receiver), or lives
in one temporary directory; all of it is removed in a `finally`, and the run
fails if anything is left.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from ipaddress import IPv4Interface
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_vmotion import (
    Children,
    IperfResult,
    Row,
    _listening,
    cleanup,
    finish,
    interruptible,
    iperf3,
    leftovers,
    ns_exec,
)
from vmknet.model import (
    PROVISIONING_STACK,
    Controller,
    Datacenter,
    Host,
    IPv4Config,
    PhysicalNetwork,
    PhysicalNic,
    PortGroup,
    Service,
    StandardSwitch,
    TeamingPolicy,
    Vmknic,
)
from vmknet.state import dumps
from vmotion_lab import Pair, host_name

MIB = 1 << 20
MGMT_VLAN, PROV_VLAN = 10, 80
CONTROLLER = IPv4Interface("198.18.0.250/24")
DATASTORE = "ds1"
NAIVE_PORT = 9020
REACH_TIMEOUT = 30.0
AIM_THROUGHPUT = ">= 0.90"
AIM_SPARSE = ">= 5.00"
AIM_RSYNC = ">= 1.00"
AIM_COLD = ">= 1.00"  # 1 s / copy seconds
RSYNC_PORT = 8730
COLD_MIB, COLD_DATA_MIB = 8192, 64


# ------------------------------------------------------------------ the lab (pure)


@dataclass(frozen=True)
class NfcLabSpec:
    speed_mbit: int = 1000
    mtu: int = 9000

    def __post_init__(self) -> None:
        if not 10 <= self.speed_mbit <= 400000:
            raise ValueError(f"speed must be 10..400000 Mbit/s, not {self.speed_mbit}")
        if not 1280 <= self.mtu <= 9000:
            raise ValueError(f"mtu must be 1280..9000, not {self.mtu}")


def provisioning_address(h: int) -> IPv4Interface:
    return IPv4Interface(f"198.18.8.{10 + h}/24")


def _host(spec: NfcLabSpec, h: int) -> Host:
    return Host(
        nics={"vmnic0": PhysicalNic(), "vmnic2": PhysicalNic(),  # management, redundant (SW-7)
              "vmnic1": PhysicalNic(speed=spec.speed_mbit, mtu=spec.mtu)},
        vswitches={
            "vSwitch0": StandardSwitch(
                uplinks=["vmnic0", "vmnic2"],
                teaming=TeamingPolicy(load_balancing="explicit", active=["vmnic0"],
                                      standby=["vmnic2"]),
                portgroups={"Management Network": PortGroup(vlan=MGMT_VLAN)}),
            "vSwitch1": StandardSwitch(
                mtu=spec.mtu, uplinks=["vmnic1"], teaming=TeamingPolicy(active=["vmnic1"]),
                portgroups={"Provisioning": PortGroup(vlan=PROV_VLAN)}),
        },
        vmknics={
            "vmk0": Vmknic(portgroup="Management Network", services=[Service.MANAGEMENT],
                           ipv4=IPv4Config(type="static",
                                           address=IPv4Interface(f"198.18.0.{10 + h}/24"))),
            "vmk1": Vmknic(portgroup="Provisioning", netstack=PROVISIONING_STACK, mtu=spec.mtu,
                           ipv4=IPv4Config(type="static", address=provisioning_address(h))),
        },
    )


def datacenter(spec: NfcLabSpec) -> Datacenter:
    physical = PhysicalNetwork(controller=Controller(vlan=MGMT_VLAN, address=CONTROLLER))
    return Datacenter(name="nfc-bench", physical=physical,
                      hosts={host_name(h): _host(spec, h) for h in (1, 2)})


def lab_yaml(spec: NfcLabSpec) -> str:
    return dumps(datacenter(spec))


def pair() -> Pair:
    """The one provisioning adapter pair esx01/vmk1 -> esx02/vmk1."""
    return Pair(0, host_name(1), host_name(2), "vmk1", "vmk1",
                provisioning_address(1).ip, provisioning_address(2).ip)


# ------------------------------------------------------------------ files (pure)


def make_dense(path: Path, size: int, chunk: int = 4 * MIB) -> int:
    """`size` bytes of random data (every block allocated); the bytes written."""
    path.parent.mkdir(parents=True, exist_ok=True)
    written = 0
    with open(path, "wb") as f:
        while written < size:
            n = min(chunk, size - written)
            f.write(os.urandom(n))
            written += n
    return written


def make_sparse(path: Path, size: int, data: int, piece: int = MIB) -> int:
    """A `size`-byte file with `data` bytes of data in `piece`-sized pieces spread evenly
    (each piece aligned to `piece`, distinct content); the rest is holes. The bytes written."""
    if data > size or size % piece or data % piece:
        raise ValueError("size and data must be multiples of piece, data <= size")
    path.parent.mkdir(parents=True, exist_ok=True)
    pieces = data // piece
    slots = size // piece
    base = bytearray(os.urandom(piece))
    written = 0
    with open(path, "wb") as f:
        f.truncate(size)
        for i in range(pieces):
            base[:8] = i.to_bytes(8, "big")
            f.seek((i * slots // pieces) * piece)
            f.write(base)
            written += piece
    return written


def data_bytes(path: Path) -> int:
    """Bytes in the file's data ranges (SEEK_DATA/SEEK_HOLE)."""
    total = 0
    fd = os.open(path, os.O_RDONLY)
    try:
        size, off = os.fstat(fd).st_size, 0
        while off < size:
            try:
                start = os.lseek(fd, off, os.SEEK_DATA)
            except OSError:
                break
            end = os.lseek(fd, start, os.SEEK_HOLE)
            total += end - start
            off = end
    finally:
        os.close(fd)
    return total


# ------------------------------------------------------------------ running


@dataclass
class Options:
    smoke: bool = False
    size_mib: int = 512
    rate_mbit: int = 1000
    fast_mbit: int = 10000  # 0: no second dense row
    sparse_mib: int = 8192
    sparse_data_mib: int = 1024
    mtu: int = 9000
    iperf_seconds: float = 5.0
    only: set[str] = field(default_factory=set)

    def wants(self, part: str) -> bool:
        return not self.only or part in self.only


def prov_ns(lab: str, host: str) -> str:
    from vmknet.dataplane import naming

    return naming.stack_ns(lab, host, PROVISIONING_STACK)


def wait_reachable(name: str, p: Pair, timeout: float = REACH_TIMEOUT) -> float:
    from vmknet.traffic.icmp import ping_once

    start = time.monotonic()
    while not ping_once(prov_ns(name, p.source_host), str(p.target), source=str(p.source),
                        timeout=0.3).received:
        if time.monotonic() - start > timeout:
            raise RuntimeError(f"no echo over {p.label} within {timeout:.0f} s")
    return time.monotonic() - start


@dataclass
class RunningLab:
    spec: NfcLabSpec
    name: str
    dc: Any
    stores: Any  # vmknet.nfc.Datastores
    up_seconds: float
    reach_seconds: float


@contextlib.contextmanager
def running_lab(spec: NfcLabSpec, name: str, folder: Path) -> Iterator[RunningLab]:
    from vmknet.inventory import Inventory
    from vmknet.lab import lifecycle
    from vmknet.nfc import Datastores

    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"lab-{spec.speed_mbit}.yaml"
    path.write_text(lab_yaml(spec), encoding="utf-8")
    inv = Inventory.open(folder / f"inventory-{spec.speed_mbit}.db")
    stores = Datastores(folder / f"ds-{spec.speed_mbit}")
    for h in (1, 2):
        stores.create(name, host_name(h), DATASTORE)
    try:
        start = time.perf_counter()
        report = lifecycle.up(inv, path, name)
        up = time.perf_counter() - start
        reach = wait_reachable(name, pair())
        yield RunningLab(spec, name, report.dc, stores, up, reach)
    finally:
        lifecycle.down(inv, name)


STREAMS: list[int] = []  # --streams-per-pair: copy_file's default when empty


def _nfc_copy(lab: RunningLab, rel: str) -> Any:
    from vmknet.nfc import NfcServer, copy_file
    from vmknet.nfc.copy import STREAMS_PER_PAIR

    with NfcServer(lab.dc, lab.name, host_name(2), lab.stores):
        return copy_file(lab.dc, lab.name, host_name(1), DATASTORE, rel,
                         host_name(2), DATASTORE, rel, stores=lab.stores,
                         streams_per_pair=STREAMS[0] if STREAMS else STREAMS_PER_PAIR)


def naive_copy(lab: RunningLab, src: Path, dst: Path) -> float:
    """Every byte of `src` (holes read as zeros) over one provisioning TCP connection into
    `dst` on the target: seconds from connect until the receiver wrote the last byte."""
    from vmknet.traffic.sockets import close_all, connect, listen

    size = src.stat().st_size
    listeners = listen(lab.dc, lab.name, host_name(2), Service.PROVISIONING, NAIVE_PORT)
    got: list[int] = []
    failed: list[BaseException] = []

    def receive() -> None:
        try:
            conn, _peer = listeners[0].accept(timeout=30)
            buf = bytearray(4 * MIB)
            view = memoryview(buf)
            done = 0
            with conn, open(dst, "wb") as out:
                conn.settimeout(60)
                while done < size:
                    n = conn.recv_into(view)
                    if n == 0:
                        break
                    out.write(view[:n])
                    done += n
            got.append(done)
        except BaseException as err:
            failed.append(err)

    thread = threading.Thread(target=receive, daemon=True)
    try:
        thread.start()
        start = time.perf_counter()
        conns = connect(lab.dc, lab.name, Service.PROVISIONING, host_name(1), host_name(2),
                        NAIVE_PORT, timeout=10)
        try:
            with open(src, "rb") as f:
                conns[0].sock.settimeout(60)
                conns[0].sock.sendfile(f)
            conns[0].sock.shutdown(socket.SHUT_WR)
            thread.join(timeout=600)
        finally:
            close_all(conns)
        seconds = time.perf_counter() - start
    finally:
        close_all(listeners)
        thread.join(timeout=10)
    if failed:
        raise failed[0]
    if got != [size]:
        raise RuntimeError(f"naive copy received {got} of {size} bytes")
    return seconds


def part_dense(lab: RunningLab, ref: IperfResult, opts: Options,
               children: Children | None = None, folder: Path | None = None) -> list[Row]:
    root = lab.stores.root(lab.name, host_name(1), DATASTORE)
    rel = "dense/dense-flat.vmdk"
    make_dense(root / rel, opts.size_mib * MIB)
    rsync: float | str | None = None
    try:
        report = _nfc_copy(lab, rel)
        (lab.stores.root(lab.name, host_name(2), DATASTORE) / rel).unlink(missing_ok=True)
        if children is not None and folder is not None:
            rsync = ensure_rsync(install=not opts.smoke) or rsync_copy(
                lab, children, root / rel, lab.stores.root(lab.name, host_name(2), DATASTORE),
                "rsync/" + rel, folder)
    finally:
        (root / rel).unlink(missing_ok=True)
        (lab.stores.root(lab.name, host_name(2), DATASTORE) / rel).unlink(missing_ok=True)
    print(report.summary(), file=sys.stderr, flush=True)
    limit = ref.received_bps / 8 / 1e6
    nic = f"NIC {lab.spec.speed_mbit} Mbit/s"
    return [
        Row("dense", f"{nic}: iperf3 vmk1->vmk1", limit, "MB/s", lab.spec.speed_mbit / 8,
            "", f"MTU {lab.spec.mtu}, {ref.retransmits} retransmits"),
        Row("dense", f"{nic}: NFC {opts.size_mib} MiB, wire", report.wire_throughput / 1e6,
            "MB/s", limit, AIM_THROUGHPUT,
            f"{report.bytes_on_wire / MIB:.1f} MiB in {report.seconds:.2f} s"),
        Row("dense", f"{nic}: NFC {opts.size_mib} MiB, logical", report.throughput / 1e6,
            "MB/s", limit, AIM_THROUGHPUT, "incl. CRC-32 digests both sides, fsync, rename"),
        *_rsync_rows(nic, opts, report.seconds, rsync),
    ]


def _rsync_rows(nic: str, opts: Options, nfc: float, rsync: float | str | None) -> list[Row]:
    if rsync is None:
        return []
    if isinstance(rsync, str):
        return [Row("rsync", f"{nic}: rsync {opts.size_mib} MiB", 0.0, "s", None, "", rsync)]
    return [Row("rsync", f"{nic}: rsync {opts.size_mib} MiB", rsync, "s", None, "",
                f"daemon, --whole-file --sparse, same pair; "
                f"{opts.size_mib * MIB / rsync / 1e6:.0f} MB/s"),
            Row("rsync", f"{nic}: NFC vs rsync, {opts.size_mib} MiB", nfc, "s", rsync,
                AIM_RSYNC, "ratio = rsync seconds / NFC seconds (> 1: NFC faster)",
                inverse=True)]


def ensure_rsync(install: bool) -> str | None:
    """None when rsync is there (apt-get installed now when `install`), else why not."""
    if shutil.which("rsync"):
        return None
    if not install:
        return "skipped: rsync not installed"
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "install", "-y", "--no-install-recommends", "rsync"],
                   capture_output=True, text=True, env=env, check=False, timeout=600)
    return None if shutil.which("rsync") else "skipped: apt-get install rsync failed"


def rsync_copy(lab: RunningLab, children: Children, src: Path, dst_root: Path, rel: str,
               folder: Path) -> float:
    """Seconds for rsync (daemon on esx02's vmk1, client bound to esx01's vmk1,
    --whole-file --sparse) to copy `src` to `dst_root`/`rel`."""
    p = pair()
    conf = folder / "rsyncd.conf"
    conf.write_text(f"use chroot = false\nuid = root\ngid = root\npid file = {folder}/rsyncd.pid"
                    f"\n[ds]\n  path = {dst_root}\n  read only = false\n", encoding="utf-8")
    daemon = children.start(ns_exec(prov_ns(lab.name, p.target_host), "rsync", "--daemon",
                                    "--no-detach", f"--config={conf}", f"--address={p.target}",
                                    f"--port={RSYNC_PORT}"))
    try:
        deadline = time.monotonic() + 10
        while not _listening(prov_ns(lab.name, p.target_host), RSYNC_PORT):
            if daemon.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("rsync daemon did not start")
            time.sleep(0.05)
        (dst_root / rel).parent.mkdir(parents=True, exist_ok=True)
        start = time.perf_counter()
        done = subprocess.run(ns_exec(prov_ns(lab.name, p.source_host), "rsync",
                                      "--whole-file", "--sparse", f"--address={p.source}",
                                      f"--port={RSYNC_PORT}", str(src),
                                      f"rsync://{p.target}/ds/{rel}"),
                              capture_output=True, text=True, check=False, timeout=600)
        seconds = time.perf_counter() - start
        if done.returncode != 0:
            raise RuntimeError(f"rsync failed: {done.stderr.strip()[-200:]}")
        if (dst_root / rel).stat().st_size != src.stat().st_size:
            raise RuntimeError("rsync copy has the wrong size")
        return seconds
    finally:
        daemon.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            daemon.communicate(timeout=5)
        (dst_root / rel).unlink(missing_ok=True)


def part_cold(lab: RunningLab) -> list[Row]:
    """The cold migration's disk: 8 GiB logical, 64 MiB of data."""
    src_root = lab.stores.root(lab.name, host_name(1), DATASTORE)
    dst_root = lab.stores.root(lab.name, host_name(2), DATASTORE)
    rel = "cold/cold-flat.vmdk"
    make_sparse(src_root / rel, COLD_MIB * MIB, COLD_DATA_MIB * MIB)
    try:
        report = _nfc_copy(lab, rel)
    finally:
        for root in (src_root, dst_root):
            (root / rel).unlink(missing_ok=True)
    print(report.summary(), file=sys.stderr, flush=True)
    return [Row("cold", f"NFC copy {COLD_MIB} MiB, {COLD_DATA_MIB} MiB data", report.seconds,
                "s", 1.0, AIM_COLD, f"{report.bytes_on_wire / MIB:.1f} MiB on the wire; "
                "limit: 1 s (the cold migration aim)", inverse=True)]


def part_sparse(lab: RunningLab, opts: Options) -> list[Row]:
    src_root = lab.stores.root(lab.name, host_name(1), DATASTORE)
    dst_root = lab.stores.root(lab.name, host_name(2), DATASTORE)
    rel = "sparse/sparse-flat.vmdk"
    naive_dst = dst_root / "naive-flat.vmdk"
    make_sparse(src_root / rel, opts.sparse_mib * MIB, opts.sparse_data_mib * MIB)
    try:
        report = _nfc_copy(lab, rel)
        (dst_root / rel).unlink()
        naive = naive_copy(lab, src_root / rel, naive_dst)
    finally:
        for p in (src_root / rel, dst_root / rel, naive_dst):
            p.unlink(missing_ok=True)
    print(report.summary(), file=sys.stderr, flush=True)
    what = f"{opts.sparse_mib} MiB, {opts.sparse_data_mib} MiB data"
    return [
        Row("sparse", f"naive full copy {what}", naive, "s", None, "",
            f"{opts.sparse_mib * MIB / naive / 1e6:.0f} MB/s, one TCP stream, holes as zeros"),
        Row("sparse", f"NFC copy {what}", report.seconds, "s", naive, AIM_SPARSE,
            f"{report.bytes_on_wire / MIB:.1f} MiB on the wire "
            f"(sparse ratio {report.sparse_ratio:.3f})", inverse=True),
    ]


def run_lab(spec: NfcLabSpec, parts: list[str], opts: Options, children: Children,
            folder: Path, name: str, failures: list[str]) -> list[Row]:
    rows: list[Row] = []
    with running_lab(spec, name, folder) as lab:
        print(f"lab NIC {spec.speed_mbit} Mbit/s, MTU {spec.mtu}: up in {lab.up_seconds:.1f} s,"
              f" pair answers after {lab.reach_seconds:.1f} s; {', '.join(parts)}",
              file=sys.stderr, flush=True)
        for part in parts:
            try:
                if part == "dense":
                    (ref,) = iperf3(children, name, [pair()], opts.iperf_seconds, prov_ns)
                    rows += part_dense(lab, ref, opts, children, folder)
                elif part == "sparse":
                    rows += part_sparse(lab, opts)
                elif part == "cold":
                    rows += part_cold(lab)
            except Exception as err:  # one part's failure must not lose the others' rows
                failures.append(f"{part} ({spec.speed_mbit} Mbit/s): {type(err).__name__}: {err}")
                print(f"FAILED {failures[-1]}", file=sys.stderr, flush=True)
    return rows


def lab_jobs(opts: Options) -> dict[NfcLabSpec, list[str]]:
    jobs: dict[NfcLabSpec, list[str]] = {}
    slow = NfcLabSpec(opts.rate_mbit, opts.mtu)
    if opts.wants("dense"):
        jobs.setdefault(slow, []).append("dense")
    if opts.wants("sparse"):
        jobs.setdefault(slow, []).append("sparse")
    fast = NfcLabSpec(opts.fast_mbit, opts.mtu) if opts.fast_mbit else slow
    if opts.wants("dense") and fast != slow:
        jobs.setdefault(fast, []).append("dense")
    if opts.wants("cold") and not opts.smoke:  # the wire: 10 Gbit/s provisioning
        jobs.setdefault(fast, []).append("cold")
    return jobs


def parse_args(argv: list[str] | None) -> tuple[Options, bool]:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--smoke", action="store_true",
                        help="64 MiB dense, 512 MiB sparse with 64 MiB data, one lab (< 30 s)")
    parser.add_argument("--size", type=int, default=512, help="dense disk, MiB")
    parser.add_argument("--sparse-size", type=int, default=8192, help="sparse disk, MiB")
    parser.add_argument("--sparse-data", type=int, default=1024, help="data in it, MiB")
    parser.add_argument("--rate-mbit", type=int, default=1000, help="NIC speed of the pair")
    parser.add_argument("--fast-mbit", type=int, default=10000,
                        help="NIC speed of the second dense row (0: none)")
    parser.add_argument("--mtu", type=int, default=9000)
    parser.add_argument("--iperf-seconds", type=float, default=5.0)
    parser.add_argument("--only", default="", help="comma-separated parts: dense,sparse,cold")
    parser.add_argument("--json", action="store_true", help="print the rows as JSON")
    parser.add_argument("--streams-per-pair", type=int, default=0,
                        help="NFC connections per adapter pair (0: copy_file's default)")
    args = parser.parse_args(argv)
    if args.streams_per_pair:
        STREAMS[:] = [args.streams_per_pair]
    opts = Options(size_mib=args.size, rate_mbit=args.rate_mbit, fast_mbit=args.fast_mbit,
                   sparse_mib=args.sparse_size, sparse_data_mib=args.sparse_data, mtu=args.mtu,
                   iperf_seconds=args.iperf_seconds,
                   only={x.strip() for x in args.only.split(",") if x.strip()})
    if args.smoke:
        opts.smoke, opts.size_mib, opts.fast_mbit = True, 64, 0
        opts.sparse_mib, opts.sparse_data_mib, opts.iperf_seconds = 512, 64, 2.0
    return opts, args.json


def lab_name() -> str:
    return f"nfb{os.getpid()}"


def main(argv: list[str] | None = None) -> int:
    opts, as_json = parse_args(argv)
    if os.geteuid() != 0:
        print("bench_nfc needs root (it builds network namespaces)", file=sys.stderr)
        return 2
    from vmknet.nfc import registry as nfc_registry

    name = lab_name()
    children = Children()
    rows: list[Row] = []
    failures: list[str] = []
    start = time.perf_counter()
    tmp_dir = ""
    try:
        with interruptible(), tempfile.TemporaryDirectory(prefix="vmknet-nfb-") as tmp:
            tmp_dir = tmp
            for spec, parts in lab_jobs(opts).items():
                rows += run_lab(spec, parts, opts, children, Path(tmp), name, failures)
    finally:
        ended = children.stop()
        ended += cleanup(name)
        left = leftovers(name)
        if tmp_dir and os.path.exists(tmp_dir):
            left.append(tmp_dir)
        alive = children.alive() + nfc_registry.server_pids(name)
    return finish(rows, failures, time.perf_counter() - start, as_json, ended=ended,
                  left=left, alive=alive,
                  clean=f"no vmkl-{name}.* namespace, no child process, no file left")

if __name__ == "__main__":
    sys.exit(main())
