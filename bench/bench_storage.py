"""IP storage benchmark: iSCSI over 1 and 2 bound paths (NMP round robin) and NFS 3 / 4.1, against
iperf3 over the same adapter pairs and libiscsi's iscsi-perf / libnfs's nfs-cp as the peer rows.

    sudo .venv/bin/python bench/bench_storage.py            # 64 MiB per row, 1 Gbit/s uplinks
    sudo .venv/bin/python bench/bench_storage.py --smoke    # 8 MiB per row (CI, < 60 s)
    sudo .venv/bin/python bench/bench_storage.py --rate-mbit 1000 --mib 128 --json

The lab is examples/storage-lab.yaml with esx01's vmnic2 and vmnic3 at
`--rate-mbit` (a tbf on each wire, both ways): iSCSI path C0 is vmk2 over
vmnic2, C1 is vmk3 over vmnic3, NFS is vmk4 over vmnic3. Rows, in one run:

- iperf3 from esx01's vmk2, and from vmk2 and vmk3 at once, to the array's
  iSCSI address (the array's namespace runs iperf3 -s): the wire's limit;
- vmknet's initiator (storage.nmp): sequential 256 KiB WRITE(10)s, then
  READ(10)s, of `--mib` MiB with MRU (one path) and with RR (`-I 1`, two
  paths, two commands in flight): aim RR >= 1.8x MRU, >= 0.8 of iperf3;
- iscsi-perf (libiscsi, 32 x 4 KiB reads in flight, 3 s) through vmk2: the peer row;
- NFS through vmknet's own client (storage/nfsc): NFS 3 through vmk4, NFS 4.1
  with one server address (vmk4) and with two (198.18.31.100 via vmk4 on
  vmnic3, 198.18.30.100 via vmk2 on vmnic2: one session, two connections),
  `--mib` MiB written (then COMMIT) and read back, against iperf3 from vmk4 to
  the NFS address and from vmk4 and vmk2 at once to both; nfs-cp (libnfs,
  NFS 3) through vmk4 as the peer row;
- the I/O pause when path C0 dies (vmnic2 down mid-write, MRU on C0): the
  longest command, against the 2 s aim.

Everything is named `vmkl-stb<pid>.*` and taken down in a `finally`.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import yaml

from vmknet.dataplane import naming
from vmknet.inventory import Inventory
from vmknet.model import NmpDevice
from vmknet.model.storage import Psp
from vmknet.storage import libiscsi, nfs, nfsc, nmp
from vmknet.storage.paths import device_id, initiator_name

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "storage-lab.yaml"
VMKNET = [sys.executable, "-m", "vmknet.cli.main"]
HOST = "esx01"
ISCSI_ADDR, NFS_ADDR = "198.18.30.100", "198.18.31.100"
NFS_ADDR2 = ISCSI_ADDR  # the array's second address: NFS 4.1 trunks over both (vmk4, vmk2)
SOURCES = {"vmk2": "198.18.30.11", "vmk3": "198.18.30.21", "vmk4": "198.18.31.11"}
IQN = "iqn.2026-11.com.example:array01.ds01"
DEVICE = device_id(IQN, 1)  # 256 MiB
CHUNK = 256 * 1024
MB = 1e6
IPERF_SECONDS = 3


@dataclass
class Row:
    measure: str
    value: float
    limit: float | None = None  # what the row is compared with, in its unit
    aim: str = ""
    note: str = ""
    unit: str = "MB/s"

    @property
    def ratio(self) -> float | None:
        return None if not self.limit else self.value / self.limit


def table(rows: list[Row]) -> str:
    out = [f"{'measure':52} {'value':>13} {'limit':>13} {'ratio':>6}  aim      note",
           "-" * 110]
    for r in rows:
        ratio = f"{r.ratio:.2f}" if r.ratio is not None else "-"
        limit = f"{r.limit:.2f} {r.unit}" if r.limit else "-"
        value = f"{r.value:.2f} {r.unit}"
        out.append(f"{r.measure:52} {value:>13} {limit:>13} {ratio:>6}  {r.aim:8} {r.note}")
    return "\n".join(out)


def sh(*args: str, timeout: float = 120) -> str:
    done = subprocess.run(args, capture_output=True, text=True, timeout=timeout, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(args[:6])}...: {(done.stderr or done.stdout)[-300:]}")
    return done.stdout


def iperf(lab: str, server: str | list[str], vmks: list[str]) -> float:
    """MB/s received by iperf3 -s in the array's namespace from each of `vmks` at once (to
    `server`, or to each vmk's own server address when a list)."""
    array = naming.array_ns(lab, "array01")
    client = naming.stack_ns(lab, HOST, "defaultTcpipStack")
    targets = server if isinstance(server, list) else [server] * len(vmks)
    servers = [subprocess.Popen(["ip", "netns", "exec", array, "iperf3", "-s", "-1", "-B",
                                 targets[n], "-p", str(5201 + n)], stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL) for n in range(len(vmks))]
    try:
        time.sleep(0.5)
        results: list[float] = []

        def one(n: int, vmk: str) -> None:
            text = sh("ip", "netns", "exec", client, "iperf3", "-J", "-c", targets[n], "-p",
                      str(5201 + n), "-B", SOURCES[vmk], "-t", str(IPERF_SECONDS),
                      timeout=IPERF_SECONDS + 20)
            results.append(json.loads(text)["end"]["sum_received"]["bits_per_second"] / 8 / MB)

        threads = [threading.Thread(target=one, args=(n, v)) for n, v in enumerate(vmks)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(IPERF_SECONDS + 30)
        return sum(results)
    finally:
        for p in servers:
            p.kill()
            p.wait(5)


def iscsi(store: Path, lab: str, psp: Psp, mib: int, write: bool) -> float:
    """MB/s of sequential 256 KiB commands over the device with `psp` (2 in flight for RR)."""
    dc = Inventory.open(store).read()
    dc.host(HOST).storage.nmp[DEVICE] = NmpDevice(psp=psp, iops=1)
    data = os.urandom(CHUNK)
    count = mib * (1 << 20) // CHUNK
    depth = 2 if psp == "VMW_PSP_RR" else 1
    with nmp.open_device(dc, lab, HOST, DEVICE, io_timeout=5.0) as dev:
        todo = iter(range(count))
        lock = threading.Lock()

        def worker() -> None:
            while True:
                with lock:
                    n = next(todo, None)
                if n is None:
                    return
                if write:
                    dev.write(n * CHUNK // 512, data)
                else:
                    dev.read(n * CHUNK // 512, CHUNK // 512)

        start = time.perf_counter()
        threads = [threading.Thread(target=worker) for _ in range(depth)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        seconds = time.perf_counter() - start
        if psp == "VMW_PSP_RR":
            assert min(dev.ios) > 0, dev.ios  # both paths carried commands
    return count * CHUNK / seconds / MB


def failover_pause(store: Path, lab: str, cli: Callable[..., str]) -> float:
    """Seconds the I/O stalls when vmnic2 (path C0) goes down under MRU: the longest command."""
    dc = Inventory.open(store).read()
    dc.host(HOST).storage.nmp[DEVICE] = NmpDevice(psp="VMW_PSP_MRU")
    data = os.urandom(64 * 1024)
    with nmp.open_device(dc, lab, HOST, DEVICE) as dev:
        for n in range(16):
            dev.write(n * 128, data)
        cli("esxcli", "-H", HOST, "network", "nic", "down", "-n", "vmnic2")
        try:
            deadline = time.monotonic() + 10
            while not dev.failovers and time.monotonic() < deadline:
                dev.write(0, data)
        finally:
            cli("esxcli", "-H", HOST, "network", "nic", "up", "-n", "vmnic2")
        if not dev.failovers:
            raise RuntimeError("no failover within 10 s of vmnic2 going down")
        return dev.failovers[0][1]


def iscsi_perf(lab: str) -> float:
    ns = naming.stack_ns(lab, HOST, "defaultTcpipStack")
    done = libiscsi.read_load(ns, "vmk2", initiator_name(HOST), f"{ISCSI_ADDR}:3260", IQN, 1,
                              seconds=3)
    found = re.findall(r"([\d.]+)\s*(k|M)?B/s", done.stdout)
    if done.returncode != 0 or not found:
        raise RuntimeError(f"iscsi-perf: {done.stderr[-200:] or done.stdout[-200:]}")
    value, unit = found[-1]
    return float(value) * (1e3 if unit == "k" else 1e6) / MB


def nfs_copy(store: Path, lab: str, mib: int, folder: Path) -> tuple[float, float]:
    dc = Inventory.open(store).read()
    src, back = folder / "src.bin", folder / "back.bin"
    src.write_bytes(os.urandom(mib << 20))
    start = time.perf_counter()
    nfs.write(dc, lab, HOST, "nfs01", "bench.bin", src)
    put = time.perf_counter() - start
    start = time.perf_counter()
    nfs.read(dc, lab, HOST, "nfs01", "bench.bin", back)
    get = time.perf_counter() - start
    if back.read_bytes() != src.read_bytes():
        raise RuntimeError("nfs-cp read back other bytes")
    return (mib << 20) / put / MB, (mib << 20) / get / MB


def nfs_client(store: Path, lab: str, mib: int, version: str, servers: list[str]) \
        -> tuple[float, float]:
    """(write, read) MB/s of `mib` MiB through vmknet's NFS client (storage/nfsc): one
    sequential write of the whole buffer (1 MiB WRITEs, pipelined) and its COMMIT, then
    one read; NFS 4.1 spreads them over a connection per server address."""
    dc = Inventory.open(store).read()
    binds = [nfs.reach(dc, lab, HOST, s).bind() for s in servers]
    data = os.urandom(mib << 20)
    share = "/share" if version == "3" else "/vols"
    with nfsc.mount(servers, share, version, binds) as m:
        with m.open_file("bench-nfsc.bin", create=True) as f:
            start = time.perf_counter()
            f.write(0, data)
            f.flush()
            put = time.perf_counter() - start
            start = time.perf_counter()
            back = f.read(0, len(data))
            get = time.perf_counter() - start
        m.remove("bench-nfsc.bin")
    if back != data:
        raise RuntimeError(f"NFS {version} read back other bytes")
    return (mib << 20) / put / MB, (mib << 20) / get / MB


def lab_file(folder: Path, rate: int) -> Path:
    spec = yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))
    nics = spec["hosts"][HOST]["nics"] = dict(spec["hosts"][HOST]["nics"])
    for nic in ("vmnic2", "vmnic3"):
        nics[nic] = {**nics[nic], "speed": rate}
    path = folder / "storage-bench.yaml"
    path.write_text(yaml.safe_dump(spec), encoding="utf-8")
    return path


def run(mib: int, rate: int) -> list[Row]:
    lab = f"stb{os.getpid()}"
    with tempfile.TemporaryDirectory(prefix="vmknet-stb-") as tmp:
        folder = Path(tmp)
        store = folder / "inventory.db"

        def cli(*args: str) -> str:
            return sh(*VMKNET, "--store", str(store), *args, timeout=300)

        try:
            cli("lab", "up", str(lab_file(folder, rate)), "--name", lab)
            esx: Callable[..., str] = lambda *a: cli("esxcli", "-H", HOST, *a)  # noqa: E731
            esx("iscsi", "adapter", "discovery", "sendtarget", "add", "-A", "vmhba64", "-a",
                f"{ISCSI_ADDR}:3260")
            esx("storage", "core", "adapter", "rescan", "-A", "vmhba64")
            esx("storage", "nfs", "add", "-H", NFS_ADDR, "-s", "/share", "-v", "nfs01")
            one, two = iperf(lab, ISCSI_ADDR, ["vmk2"]), iperf(lab, ISCSI_ADDR, ["vmk2", "vmk3"])
            rows = [Row("iperf3 vmk2 -> array (1 pair)", one, note=f"uplinks {rate} Mbit/s"),
                    Row("iperf3 vmk2 + vmk3 -> array (2 pairs)", two)]
            for write in (True, False):
                op = "write" if write else "read"
                mru = iscsi(store, lab, "VMW_PSP_MRU", mib, write)
                rr = iscsi(store, lab, "VMW_PSP_RR", mib, write)
                rows += [Row(f"iSCSI seq {op}, 1 path (MRU), vmknet initiator", mru, one,
                             ">= 0.80"),
                         Row(f"iSCSI seq {op}, 2 paths (RR -I 1), vmknet initiator", rr, two,
                             ">= 0.80"),
                         Row(f"  RR 2 paths vs MRU 1 path ({op})", rr, mru, ">= 1.80",
                             "limit: the MRU row")]
            rows.append(Row("iscsi-perf (libiscsi) 4 KiB reads x32, vmk2: peer", iscsi_perf(lab),
                            one))
            nfs_one = iperf(lab, NFS_ADDR, ["vmk4"])
            nfs_two = iperf(lab, [NFS_ADDR, NFS_ADDR2], ["vmk4", "vmk2"])
            put, get = nfs_copy(store, lab, mib, folder)
            v3 = nfs_client(store, lab, mib, "3", [NFS_ADDR])
            one41 = nfs_client(store, lab, mib, "4.1", [NFS_ADDR])
            two41 = nfs_client(store, lab, mib, "4.1", [NFS_ADDR, NFS_ADDR2])
            rows += [Row("iperf3 vmk4 -> array NFS address", nfs_one),
                     Row("iperf3 vmk4 + vmk2 -> both array addresses (2 pairs)", nfs_two)]
            for n, op in enumerate(("write", "read")):
                rows += [Row(f"NFS 3 {op} through vmk4, vmknet client", v3[n], nfs_one,
                             ">= 0.80"),
                         Row(f"NFS 4.1 {op}, 1 address (vmk4), vmknet client", one41[n],
                             nfs_one, ">= 0.80"),
                         Row(f"NFS 4.1 {op}, 2 addresses (vmk4 + vmk2), vmknet client",
                             two41[n], nfs_two, ">= 0.80"),
                         Row(f"  NFS 4.1 2 addresses vs 1 ({op})", two41[n], one41[n],
                             ">= 1.80", "limit: the 1-address row"),
                         Row(f"NFS 3 nfs-cp {op} through vmk4 (libnfs: peer)",
                             (put, get)[n], nfs_one, ">= 0.80")]
            pause = failover_pause(store, lab, cli)
            rows.append(Row("I/O pause when C0 dies (MRU, vmnic2 down)", pause, 2.0,
                            "<= 1.00", "limit: the 2 s aim", unit="s"))
            return rows
        finally:
            subprocess.run([*VMKNET, "--store", str(store), "lab", "down", "--name", lab],
                           capture_output=True, timeout=120, check=False)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="8 MiB per row (CI)")
    parser.add_argument("--mib", type=int, default=64, help="MiB per iSCSI/NFS row (1-200)")
    parser.add_argument("--rate-mbit", type=int, default=1000, help="vmnic2/vmnic3 speed")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    mib = 8 if args.smoke else max(1, min(args.mib, 200))
    rows = run(mib, args.rate_mbit)
    if args.json:
        print(json.dumps([{**asdict(r), "ratio": r.ratio} for r in rows], indent=2))
    else:
        print(f"{mib} MiB per row, esx01's vmnic2/vmnic3 at {args.rate_mbit} Mbit/s")
        print(table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
