"""The root tbf qdisc of an interface: an uplink's physical speed.

Netlink (pyroute2) sets and reads tbf for rates below 2^32 bytes/s (~34 Gbit/s);
pyroute2 has no TCA_TBF_RATE64, so faster rates (40/100 Gbit uplinks) use the
`tc` command inside the namespace; `rtdump` reads TCA_TBF_RATE64 itself.
"""

from __future__ import annotations

import subprocess

from ..kops import SetQdisc
from . import netns

LATENCY_MS = 50
RATE32_MAX = 0xFFFFFFFF


def rate_bytes(rate_mbit: int) -> int:
    return rate_mbit * 1_000_000 // 8


def burst_bytes(rate_mbit: int) -> int:
    """A bucket of 4 ms at line rate, at least 64 KiB (above any jumbo frame)."""
    return max(rate_bytes(rate_mbit) // 250, 64 * 1024)


def _tc(ns: str, *args: str) -> str:
    done = subprocess.run(["ip", "netns", "exec", ns, "tc", *args], check=True,
                          capture_output=True, timeout=10)
    return done.stdout.decode()


def set_qdisc(op: SetQdisc) -> None:
    with netns.open_netlink(op.ns) as nlk:
        if op.after is None:
            if op.before is not None:
                nlk.del_root_qdisc(op.ifname)
            return
        rate = rate_bytes(op.after.rate_mbit)
        burst = burst_bytes(op.after.rate_mbit)
        nlk.index(op.ifname)  # a missing interface fails the same way on both paths
        if rate < RATE32_MAX:
            nlk.tbf("replace", op.ifname, rate, burst, LATENCY_MS)
        else:
            _tc(op.ns, "qdisc", "replace", "dev", op.ifname, "root", "tbf",
                "rate", f"{op.after.rate_mbit}mbit", "burst", str(burst),
                "latency", f"{LATENCY_MS}ms")


def to_mbit(rate: int) -> int:
    return round(rate * 8 / 1_000_000)
