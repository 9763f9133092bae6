"""Live traffic for the UI: bytes per second per adapter and per service, from the lab's counters.

    meter = Meter(read=lambda: read_lab(dc, lab, hosts))
    meter.sample(now)   # -> {"adapters": {host: {vmk: {rx, tx}}}, "services": {svc: {rx, tx}}}

An adapter's counters are those of its vmkN interface (traffic.stats); the rate
is the difference of two readings over the time between them. A service's rate
is the sum over the adapters tagged with it: an adapter with two services
counts in both, as vSphere's per-service charts do. A counter that went down
(the adapter was re-created by a change) restarts from zero, never a negative rate.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from ..model import Datacenter
from ..traffic.stats import Counters, adapter_counters

Reading = dict[tuple[str, str], Counters]  # (host, vmk) -> counters
Json = dict[str, Any]


def read_lab(dc: Datacenter, lab: str, hosts: Iterable[str]) -> Reading:
    out: Reading = {}
    for host in hosts:
        for vmk, counters in adapter_counters(dc, lab, host).items():
            out[(host, vmk)] = counters
    return out


def services_of(dc: Datacenter) -> dict[tuple[str, str], list[str]]:
    return {(h, v): [str(s) for s in nic.services]
            for h, host in dc.hosts.items() for v, nic in host.vmknics.items()}


def _rate(now: Counters, before: Counters | None, seconds: float) -> tuple[float, float]:
    if before is None or seconds <= 0:
        return 0.0, 0.0
    rx, tx = now.rx_bytes - before.rx_bytes, now.tx_bytes - before.tx_bytes
    if rx < 0 or tx < 0:  # re-created interface: its counters started again
        return 0.0, 0.0
    return rx / seconds, tx / seconds


class Meter:
    """Keeps the previous reading; each `sample` answers the rates since then."""

    def __init__(self, read: Callable[[], Reading],
                 services: dict[tuple[str, str], list[str]]) -> None:
        self._read = read
        self._services = services
        self._last: Reading = {}
        self._at: float | None = None

    def retarget(self, read: Callable[[], Reading],
                 services: dict[tuple[str, str], list[str]]) -> None:
        """The inventory changed: read the new adapters, keep the last reading for the rates."""
        self._read, self._services = read, services

    def sample(self, now: float) -> Json:
        reading = self._read()
        seconds = now - self._at if self._at is not None else 0.0
        adapters: dict[str, dict[str, Json]] = {}
        per_service: dict[str, Json] = {}
        for (host, vmk), counters in sorted(reading.items()):
            rx, tx = _rate(counters, self._last.get((host, vmk)), seconds)
            adapters.setdefault(host, {})[vmk] = {"rx": round(rx, 1), "tx": round(tx, 1)}
            for svc in self._services.get((host, vmk), []):
                total = per_service.setdefault(svc, {"rx": 0.0, "tx": 0.0})
                total["rx"] = round(total["rx"] + rx, 1)
                total["tx"] = round(total["tx"] + tx, 1)
        first = self._at is None
        self._last, self._at = reading, now
        return {"adapters": adapters, "services": per_service, "first": first,
                "seconds": round(seconds, 4)}
