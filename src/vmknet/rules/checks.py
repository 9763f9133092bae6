"""The refusal rules: invariants every accepted state satisfies.

Operations mutate a copy, then run these on the hosts they touched; a
desired-state file runs them on every host. The first error refuses the
change. Design advice that is not refused lives in `lint`.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from ..errors import VmknetError
from ..model import Datacenter
from .exclusive import check_exclusive
from .references import check_datacenter_references, check_host_references, host_exists
from .requirements import check_management
from .services import check_services
from .stacks import check_stacks
from .storage import check_storage
from .switches import check_mtu


def check_host(dc: Datacenter, name: str) -> Iterator[VmknetError]:
    host = dc.hosts.get(name)
    if host is None:
        yield from host_exists(dc, name)
        return
    yield from check_stacks(name, host)
    yield from check_host_references(dc, name, host)
    yield from check_services(name, host)
    yield from check_exclusive(name, host)
    yield from check_mtu(dc, name, host)
    yield from check_storage(dc, name, host)
    yield from check_management(name, host)


def check(dc: Datacenter, hosts: Iterable[str] | None = None) -> list[VmknetError]:
    """All violations; `hosts` limits the per-host checks to the ones an operation touched."""
    names = dc.hosts.keys() if hosts is None else hosts
    errors = list(check_datacenter_references(dc))
    for name in names:
        if name in dc.hosts:
            errors.extend(check_host(dc, name))
    return errors


def ensure_valid(dc: Datacenter, hosts: Iterable[str] | None = None) -> None:
    """Raise the first violation, if any."""
    errors = check(dc, hosts)
    if errors:
        raise errors[0]
