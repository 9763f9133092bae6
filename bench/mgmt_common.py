"""Shared by bench_mgmt.py and its two child processes (mgmt_controller.py, mgmt_agents.py).

- The bench's datacenter: N hosts, each with one management adapter vmk0 whose
  address is in 127.1.0.0/16 (loopback: the controller checks a heartbeat's
  source address against the host's management addresses, so each simulated
  agent binds its sockets to its own 127.1.x.y). ADDR-1 refuses loopback
  addresses in a stored inventory, so this datacenter is never linted: it is
  the controller's inventory callable, built in memory.
- The management frames (vmknet.mgmt.wire: 4-byte length + JSON) over asyncio
  streams, for the simulated agents and the asyncio echo baseline.
- What /proc says about a process: CPU seconds, RSS, threads.
- Percentiles and the children's one-JSON-object-per-line protocol.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Interface
from typing import Any

from vmknet.mgmt import wire
from vmknet.model import Datacenter, new_host

BASE = IPv4Address("127.1.0.0")
PER_OCTET = 250  # 127.1.q.(1..250): never .0 or .255
MAX_HOSTS = 250 * 250


def host_name(i: int) -> str:
    return f"esx{i + 1:05d}"


def address(i: int) -> str:
    """Host i's (0-based) management address: 127.1.q.(r + 1) with (q, r) = divmod(i, 250)."""
    if not 0 <= i < MAX_HOSTS:
        raise ValueError(f"host index {i} outside 0..{MAX_HOSTS - 1}")
    q, r = divmod(i, PER_OCTET)
    return str(BASE + 256 * q + r + 1)


def plan(n: int) -> list[tuple[str, str]]:
    """(host, management address) of every simulated host."""
    return [(host_name(i), address(i)) for i in range(n)]


def datacenter(n: int) -> Datacenter:
    """N hosts as ESXi installs them (SW-1), vmk0 static on its 127.1.x.y/8."""
    return Datacenter(name="bench-mgmt", hosts={
        name: new_host(1, IPv4Interface(f"{addr}/8")) for name, addr in plan(n)})


def shares(items: Sequence[Any], parts: int) -> list[list[Any]]:
    """`items` in `parts` contiguous slices as equal as can be (empty slices dropped)."""
    parts = max(1, parts)
    size, extra = divmod(len(items), parts)
    out, start = [], 0
    for p in range(parts):
        end = start + size + (1 if p < extra else 0)
        if end > start:
            out.append(list(items[start:end]))
        start = end
    return out


# -- statistics --------------------------------------------------------------------------


def percentile(samples: Sequence[float], p: float) -> float:
    """The p-th percentile (0..100), nearest rank: the smallest sample with at least p% of
    the samples at or below it (what "p99 under 50 ms" means for a list of latencies)."""
    if not samples:
        raise ValueError("no samples")
    if not 0 <= p <= 100:
        raise ValueError(f"percentile {p} outside 0..100")
    ordered = sorted(samples)
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[rank - 1]


# -- /proc -------------------------------------------------------------------------------


@dataclass(frozen=True)
class ProcSample:
    cpu: float  # seconds of user + system time, all threads
    threads: int


def parse_stat(text: str, ticks: int) -> ProcSample:
    """/proc/<pid>/stat: the command name may hold spaces and ')', so split after the last."""
    fields = text[text.rindex(")") + 2:].split()
    # fields[0] is field 3 (state): utime is field 14, stime 15, num_threads 20.
    return ProcSample((int(fields[11]) + int(fields[12])) / ticks, int(fields[17]))


def proc_sample(pid: int) -> ProcSample:
    with open(f"/proc/{pid}/stat", encoding="ascii") as f:
        return parse_stat(f.read(), os.sysconf("SC_CLK_TCK"))


def parse_rss(status: str) -> int:
    """VmRSS of /proc/<pid>/status, in bytes."""
    for line in status.splitlines():
        if line.startswith("VmRSS:"):
            value, unit = line.split()[1:3]
            if unit != "kB":
                raise ValueError(f"VmRSS in {unit}")
            return int(value) * 1024
    raise ValueError("no VmRSS line")


def rss(pid: int) -> int:
    with open(f"/proc/{pid}/status", encoding="ascii") as f:
        return parse_rss(f.read())


# -- frames over asyncio streams (vmknet.mgmt.wire's format) --------------------------------


def frame(message: Mapping[str, Any]) -> bytes:
    body = json.dumps(message, separators=(",", ":")).encode()
    return wire.LENGTH.pack(len(body)) + body


async def read_frame(reader: asyncio.StreamReader, limit: int = wire.MAX_FRAME
                     ) -> dict[str, Any] | None:
    """One frame's object; None when the peer closed cleanly before a frame."""
    try:
        head = await reader.readexactly(wire.LENGTH.size)
    except asyncio.IncompleteReadError as err:
        if err.partial:
            raise wire.WireError("The peer closed inside a frame header") from err
        return None
    (size,) = wire.LENGTH.unpack(head)
    if size > limit:
        raise wire.WireError(f"Frame of {size} bytes announced; the limit is {limit}")
    message = json.loads(await reader.readexactly(size))
    if not isinstance(message, dict):
        raise wire.WireError("Frame is not a JSON object")
    return message


async def call(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, method: str,
               params: Mapping[str, Any], request_id: int = 1) -> Any:
    writer.write(frame({"id": request_id, "method": method, "params": dict(params)}))
    await writer.drain()
    reply = await read_frame(reader)
    if reply is None:
        raise wire.PeerClosed("The peer closed the management connection")
    if reply.get("id") != request_id:
        raise wire.WireError(f"Reply to request {reply.get('id')!r}, expected {request_id}")
    error = reply.get("error")
    if isinstance(error, dict):
        raise wire.WireError(str(error.get("message", "")), code=str(error.get("code", "Error")))
    return reply.get("result")


# -- the children's stdout protocol ------------------------------------------------------------


def say(kind: str, **fields: Any) -> None:
    """One line on stdout for the parent: {"kind": ..., ...}."""
    print(json.dumps({"kind": kind, **fields}), flush=True)
