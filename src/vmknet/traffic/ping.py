"""vmkping: ICMP echo from one host's TCP/IP stack, printed as ESXi prints it.

    PING 198.18.4.12 (198.18.4.12): 8972 data bytes
    8980 bytes from 198.18.4.12: icmp_seq=0 ttl=64 time=0.181 ms

    --- 198.18.4.12 ping statistics ---
    3 packets transmitted, 3 packets received, 0% packet loss
    round-trip min/avg/max = 0.139/0.163/0.181 ms

With -I vmkN the echo leaves from that adapter (bound to its address and
device, in its stack's namespace); with only -S from that stack; by default
from defaultTcpipStack, as on ESXi.
"""

from __future__ import annotations

import contextlib
import socket
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv6Address, ip_address

from ..dataplane import naming
from ..errors import InvalidArgument, NotFound
from ..model import DEFAULT_STACK, Datacenter
from .icmp import EchoResult, Reply, Report, echo, open_echo_socket
from .place import LabRef, adapter_addresses, stack_ns

DEFAULT_SIZE = 56
DEFAULT_COUNT = 3


@dataclass(frozen=True, slots=True)
class Origin:
    """Where an echo leaves from: the stack namespace, and the adapter when -I named one."""

    ns: str
    stack: str
    vmk: str | None
    source: str | None  # the adapter's address of the target's family
    device: str | None


def origin(dc: Datacenter, lab: LabRef, host: str, target: IPv4Address | IPv6Address, *,
           vmk: str | None = None, netstack: str | None = None) -> Origin:
    """The namespace, source address and device of `vmkping -I vmk -S netstack`."""
    h = dc.host(host)
    if vmk is not None:
        if vmk not in h.vmknics:
            raise NotFound(f"Vmknic {vmk} is not found on host {host}")
        stack = h.vmknics[vmk].netstack
        if netstack is not None and netstack != stack:
            raise InvalidArgument(f"Vmknic {vmk} is on netstack {stack}, not {netstack}: "
                                  f"drop -S or use -S {stack}")
        mine = [a for a in adapter_addresses(dc, host, vmk) if a.version == target.version]
        if not mine:
            raise InvalidArgument(f"Vmknic {vmk} has no static IPv{target.version} address")
        return Origin(stack_ns(lab, host, stack), stack, vmk, str(mine[0].ip),
                      naming.adapter_ifname(vmk))
    stack = netstack or DEFAULT_STACK
    present = set(h.netstacks) | {v.netstack for v in h.vmknics.values()}
    if stack not in present:
        raise NotFound(f"Netstack instance '{stack}' is not found on host {host}")
    return Origin(stack_ns(lab, host, stack), stack, None, None, None)


def parse_target(address: str, ipv6: bool) -> IPv4Address | IPv6Address:
    try:
        target = ip_address(address)
    except ValueError:
        raise InvalidArgument(f"'{address}' is not an IP address: vmkping takes an address, "
                              "not a name") from None
    if ipv6 and target.version != 6:
        raise InvalidArgument(f"-6 given but {address} is not an IPv6 address")
    return target


def vmkping(dc: Datacenter, lab: LabRef, host: str, address: str, *, vmk: str | None = None,
            netstack: str | None = None, ipv6: bool = False, df: bool = False,
            size: int = DEFAULT_SIZE, count: int = DEFAULT_COUNT, timeout: float = 1.0,
            interval: float = 1.0, report: Report | None = None) -> EchoResult:
    """Echo `address` from `host` as `vmkping` would; `report` sees each line's event."""
    target = parse_target(address, ipv6)
    where = origin(dc, lab, host, target, vmk=vmk, netstack=netstack)
    family = socket.AF_INET if target.version == 4 else socket.AF_INET6
    sock = open_echo_socket(where.ns, family, where.source, where.device, df)
    with contextlib.closing(sock):
        return echo(sock, str(target), size=size, count=count, timeout=timeout,
                    interval=interval, report=report)


# ---------------------------------------------------------------- ESXi's lines


def header_line(target: str, size: int) -> str:
    return f"PING {target} ({target}): {size} data bytes"


def reply_line(reply: Reply) -> str:
    ttl = f" ttl={reply.ttl}" if reply.ttl is not None else ""
    return (f"{reply.nbytes} bytes from {reply.source}: icmp_seq={reply.seq}{ttl} "
            f"time={reply.rtt_ms:.3f} ms")


def event_line(event: Reply | str) -> str:
    return event if isinstance(event, str) else reply_line(event)


def loss_percent(sent: int, received: int) -> str:
    if sent == 0:
        return "0%"
    loss = 100.0 * (sent - received) / sent
    return f"{loss:.0f}%" if loss == int(loss) else f"{loss:.1f}%"


def summary_lines(result: EchoResult) -> list[str]:
    lines = ["", f"--- {result.target} ping statistics ---",
             f"{result.sent} packets transmitted, {result.received} packets received, "
             f"{loss_percent(result.sent, result.received)} packet loss"]
    if result.replies:
        rtts = [r.rtt_ms for r in result.replies]
        lines.append(f"round-trip min/avg/max = {min(rtts):.3f}/{sum(rtts) / len(rtts):.3f}/"
                     f"{max(rtts):.3f} ms")
    return lines

