"""Output commit measured by a client (bench_ft.py): record latencies and failover as seen outside.

    got = Client(ns, "198.18.0.11", 9100, first=0); got.start() ... got.stop()
    sampler = Produced(lab, vm); ... latencies(got.arrivals, sampler.samples)

A record's production time comes from the guest's produced-records counter, sampled
every SAMPLE seconds over the VM's control socket (the bench and the VM share one
machine and its monotonic clock), interpolated between samples; its arrival time is
the client's. Latency = arrival - production.
"""

from __future__ import annotations

import bisect
import contextlib
import socket
import threading
import time

from vmknet.ft.output import record
from vmknet.traffic.sockets import tcp_socket
from vmknet.vm import manage

SAMPLE = 0.003  # s between samples of the produced counter


class Client:
    """Reads `from N` on; each record checked against record(n) and timestamped."""

    def __init__(self, ns: str, address: str, port: int, first: int) -> None:
        self.sock = tcp_socket(ns, socket.AF_INET)
        self.sock.settimeout(5.0)
        self.sock.connect((address, port))
        self.sock.sendall(f"from {first}\n".encode())
        self.arrivals: list[tuple[int, float]] = []  # (record, time.monotonic())
        self.closed: float | None = None  # when the server's side went away
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._read, daemon=True)

    def start(self) -> Client:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)
        with contextlib.suppress(OSError):
            self.sock.close()

    def next(self) -> int:
        return self.arrivals[-1][0] + 1 if self.arrivals else 0

    def _read(self) -> None:
        buf = b""
        while not self._stop.is_set():
            try:
                data = self.sock.recv(65536)
            except TimeoutError:
                continue
            except OSError:
                data = b""
            now = time.monotonic()
            if not data:
                self.closed = now
                return
            buf += data
            *lines, buf = buf.split(b"\n")
            for line in lines:
                n = int(line.split()[0])
                if record(n) != line + b"\n":
                    raise AssertionError(f"record {n} is corrupt: {line!r}")
                self.arrivals.append((n, now))


class Produced:
    """Samples the VM's produced-records counter: (time, records produced so far)."""

    def __init__(self, lab: str, vm: str) -> None:
        self.lab, self.vm = lab, vm
        self.samples: list[tuple[float, int]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)

    def _run(self) -> None:
        while not self._stop.wait(SAMPLE):
            t0 = time.monotonic()
            with contextlib.suppress(Exception):  # the VM may die: the samples so far count
                ft = manage.status(self.lab, self.vm).get("ft") or {}
                produced = ft.get("output_produced")
                if isinstance(produced, int):
                    self.samples.append(((t0 + time.monotonic()) / 2, produced))


def latencies(arrivals: list[tuple[int, float]], samples: list[tuple[float, int]]
              ) -> list[float]:
    """Seconds from production to arrival of each record the samples date."""
    counts = [c for _, c in samples]
    out = []
    for n, arrived in arrivals:
        i = bisect.bisect_right(counts, n)  # first sample that had produced record n
        if i == 0 or i >= len(samples):
            continue  # produced before the first sample or after the last: undated
        (t0, c0), (t1, c1) = samples[i - 1], samples[i]
        made = t0 + (n + 1 - c0) / (c1 - c0) * (t1 - t0)
        out.append(arrived - made)
    return out


def summary(values: list[float]) -> tuple[float, float, float]:
    """(mean, p50, p99) in ms."""
    if not values:
        return (float("nan"),) * 3
    ordered = sorted(values)

    def pick(q: float) -> float:
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000

    return sum(values) / len(values) * 1000, pick(0.5), pick(0.99)
