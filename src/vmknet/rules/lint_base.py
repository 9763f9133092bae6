"""What every lint check shares: the finding type and a one-pass index of the datacenter.

The index is built once per `lint` call (O(adapters)) so that no check has
to walk switches or parse addresses again; checks that compare adapters
across hosts key dictionaries by address or subnet instead of comparing
every pair (a 1000-host datacenter lints in well under a second).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from ipaddress import IPv4Interface, IPv6Interface
from typing import Literal

from ..model import Cluster, Datacenter, Host, Service, Vmknic
from ..resolve import carriers, natural_key, usable
from .paths import host_path, vmk_path
from .topology import Attachment, attachment

Severity = Literal["error", "warning", "info"]
IPInterface = IPv4Interface | IPv6Interface


@dataclass(frozen=True, slots=True)
class Finding:
    rule: str
    severity: Severity
    path: str
    message: str
    hint: str


@dataclass(frozen=True, slots=True)
class Adapter:
    """One VMkernel adapter with its switch side and its static addresses resolved."""

    host: str
    name: str
    vmk: Vmknic
    att: Attachment | None  # None: its port group does not exist (a refused reference)
    addresses: tuple[IPInterface, ...]

    @property
    def path(self) -> str:
        return vmk_path(self.host, self.name)

    @property
    def label(self) -> str:
        return f"{self.host}/{self.name}"


@dataclass(frozen=True, slots=True)
class Context:
    dc: Datacenter
    adapters: dict[str, dict[str, Adapter]]  # host -> vmk name -> adapter, in name order
    _usable: dict[tuple[str, Service], list[Adapter]] = field(default_factory=dict)

    @classmethod
    def build(cls, dc: Datacenter) -> Context:
        return cls(dc, {name: _index_host(dc, name, host) for name, host in dc.hosts.items()})

    def members(self, cluster: Cluster) -> list[str]:
        """Cluster hosts that exist (a dangling name is a refused reference, not lint's job)."""
        return [h for h in cluster.hosts if h in self.dc.hosts]

    def usable(self, host: str, service: Service) -> list[Adapter]:
        """Adapters configured for `service` that can carry it, no fallback (EX-5, SVC-4)."""
        key = (host, service)
        if key not in self._usable:  # several cluster checks ask the same question
            h = self.dc.hosts[host]
            self._usable[key] = [self.adapters[host][n] for n in carriers(h, service)
                                 if usable(h, n)]
        return self._usable[key]


def _index_host(dc: Datacenter, name: str, host: Host) -> dict[str, Adapter]:
    return {
        vmk_name: Adapter(name, vmk_name, vmk, attachment(dc, name, host, vmk), addresses(vmk))
        for vmk_name, vmk in sorted(host.vmknics.items(), key=lambda kv: natural_key(kv[0]))
    }


def addresses(vmk: Vmknic) -> tuple[IPInterface, ...]:
    v4: tuple[IPInterface, ...] = (
        (vmk.ipv4.address,) if vmk.ipv4.type == "static" and vmk.ipv4.address else ()
    )
    return v4 + tuple(vmk.ipv6.addresses)


def finding(rule: str, severity: Severity, path: str, message: str, hint: str) -> Finding:
    return Finding(rule, severity, path, message, hint)


def host_finding(rule: str, severity: Severity, host: str, message: str, hint: str) -> Finding:
    return Finding(rule, severity, host_path(host), message, hint)


def names(items: Iterable[str], limit: int = 4) -> str:
    """'a, b, c and 2 more': a finding stays one line in a 1000-host datacenter."""
    shown = list(items)
    head = ", ".join(shown[:limit])
    return head if len(shown) <= limit else f"{head} and {len(shown) - limit} more"
