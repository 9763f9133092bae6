"""Output commit's stream on loopback: a client names where it starts, never how much
the VM builds for it (a hostile start is refused as 0), and sees only released records;
and the benchmark's dating of records (bench/ft_output.py)."""

from __future__ import annotations

import os
import socket
import sys
import time
from pathlib import Path

from vmknet.ft.output import Output, record


def test_a_negative_start_reads_from_zero_and_only_released_records() -> None:
    out = Output(rate=100_000, running=lambda: True)
    own = os.open("/proc/self/ns/net", os.O_RDONLY)
    try:
        out.start(own, "127.0.0.1", 0)  # our own namespace, by fd
        assert out._listener is not None
        port = out._listener.getsockname()[1]
        time.sleep(0.05)  # the guest has produced records; none released yet
        with socket.create_connection(("127.0.0.1", port), timeout=5) as client:
            client.sendall(b"from -100000000000000\n")
            client.settimeout(0.3)
            try:
                early = client.recv(100)
            except TimeoutError:
                early = b""
            assert early == b""  # nothing leaves before its checkpoint is acked
            out.release(3)
            client.settimeout(5)
            got = b""
            while got.count(b"\n") < 3:
                got += client.recv(4096)
        assert got == record(0) + record(1) + record(2)
    finally:
        out.close()
        os.close(own)


def test_bench_dates_each_record_between_two_samples_of_the_counter() -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
    from ft_output import latencies, summary

    samples = [(0.0, 0), (0.01, 2), (0.02, 4)]  # (time, records produced so far)
    got = latencies([(0, 0.05), (3, 0.05), (4, 0.06)], samples)  # record 4: not yet dated
    assert [round(x, 6) for x in got] == [0.045, 0.03]
    mean, p50, p99 = summary(got)
    assert (round(mean, 3), round(p50, 3), round(p99, 3)) == (37.5, 45.0, 45.0)
