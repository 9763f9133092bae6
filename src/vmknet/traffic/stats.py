"""Bytes and packets per adapter and per uplink, from the kernel (SEC-3: where bytes went).

An adapter's counters are those of its `vmkN` interface in its stack
namespace (tx = sent by the stack). An uplink's are the sum over the wires
of that vmnic in the host namespace (each adapter gets its own wire per
uplink, render.py), mapped back to the vmnic with `render_index`; tx = towards
the physical network.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from ..dataplane import naming
from ..dataplane.render import render_index
from ..model import Datacenter
from . import kernel_info
from .place import LabRef, host_ns, lab_name, stack_ns


@dataclass(frozen=True, slots=True)
class Counters:
    rx_bytes: int = 0
    tx_bytes: int = 0
    rx_packets: int = 0
    tx_packets: int = 0

    def __add__(self, other: Counters) -> Counters:
        return Counters(self.rx_bytes + other.rx_bytes, self.tx_bytes + other.tx_bytes,
                        self.rx_packets + other.rx_packets, self.tx_packets + other.tx_packets)

    def __sub__(self, other: Counters) -> Counters:
        return Counters(self.rx_bytes - other.rx_bytes, self.tx_bytes - other.tx_bytes,
                        self.rx_packets - other.rx_packets, self.tx_packets - other.tx_packets)


@dataclass(frozen=True, slots=True)
class StatsRow:
    host: str
    kind: str  # "adapter" or "uplink"
    name: str  # vmkN or vmnicN
    where: str  # the adapter's stack, or the uplinked adapters ("vmk1,vmk2")
    counters: Counters


def _of(link: kernel_info.LinkInfo) -> Counters:
    return Counters(link.rx_bytes, link.tx_bytes, link.rx_packets, link.tx_packets)


def adapter_counters(dc: Datacenter, lab: LabRef, host: str) -> dict[str, Counters]:
    """vmkN -> counters of its interface; adapters whose namespace is missing are left out."""
    h = dc.host(host)
    out: dict[str, Counters] = {}
    for stack in sorted({v.netstack for v in h.vmknics.values()}):
        try:
            found = {link.name: link for link in kernel_info.links(stack_ns(lab, host, stack))}
        except FileNotFoundError:
            continue
        for vmk, nic in h.vmknics.items():
            link = found.get(naming.adapter_ifname(vmk))
            if nic.netstack == stack and link is not None:
                out[vmk] = _of(link)
    return out


Uplinks = dict[str, tuple[Counters, list[str]]]


def uplink_counters(dc: Datacenter, lab: LabRef, host: str) -> Uplinks:
    """vmnicN -> (sum over its wires, the adapters those wires serve)."""
    ns = host_ns(lab, host)
    index = render_index(dc, lab_name(lab))
    out: Uplinks = {}
    try:
        found = kernel_info.links(ns)
    except FileNotFoundError:
        return out
    for link in found:
        end = index.get((ns, link.name))
        if end is None or end.role != "wire-host" or end.nic is None:
            continue
        total, vmks = out.get(end.nic, (Counters(), []))
        out[end.nic] = (total + _of(link), [*vmks, end.vmk or "?"])
    return out


def host_stats(dc: Datacenter, lab: LabRef, hosts: Iterable[str] | None = None) -> list[StatsRow]:
    """Adapters then uplinks of each host, in ESXi's name order."""
    rows: list[StatsRow] = []
    for host in sorted(hosts if hosts is not None else dc.hosts):
        h = dc.host(host)
        adapters = adapter_counters(dc, lab, host)
        for vmk in sorted(adapters, key=naming.natural_key):
            rows.append(StatsRow(host, "adapter", vmk, h.vmknics[vmk].netstack, adapters[vmk]))
        uplinks = uplink_counters(dc, lab, host)
        for nic in sorted(uplinks, key=naming.natural_key):
            total, vmks = uplinks[nic]
            served = ",".join(sorted(vmks, key=naming.natural_key))
            rows.append(StatsRow(host, "uplink", nic, served, total))
    return rows
