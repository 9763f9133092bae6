"""FT-3 (pure): per host at most 4 FT VMs and 8 FT vCPUs, primaries and secondaries alike."""

from __future__ import annotations

from collections.abc import Iterable

from ..errors import RuleViolation

MAX_VMS = 4
MAX_VCPUS = 8

Protected = tuple[str, str, int]  # primary host, secondary host, vCPUs


def check(protected: Iterable[Protected], primary: str, secondary: str, vcpus: int) -> None:
    """Refuse (FT-3) when protecting one more VM of `vcpus` would break a host's limits."""
    if primary == secondary:
        raise RuleViolation("FT-1", f"The secondary must run on another host than the "
                            f"primary ({primary})", host=primary)
    if vcpus < 1:
        raise RuleViolation("FT-3", f"An FT VM has at least one vCPU, not {vcpus}")
    vms: dict[str, int] = {}
    cpus: dict[str, int] = {}
    for p, s, n in protected:
        for host in (p, s):  # a secondary costs its host as much as the primary does
            vms[host] = vms.get(host, 0) + 1
            cpus[host] = cpus.get(host, 0) + n
    for host in (primary, secondary):
        if vms.get(host, 0) + 1 > MAX_VMS:
            raise RuleViolation("FT-3", f"Host {host} already runs {vms[host]} FT VMs "
                                f"(primaries and secondaries): at most {MAX_VMS}", host=host)
        if cpus.get(host, 0) + vcpus > MAX_VCPUS:
            raise RuleViolation("FT-3", f"Host {host} would run {cpus.get(host, 0) + vcpus} FT "
                                f"vCPUs: at most {MAX_VCPUS}", host=host)
