"""The refusal rules: invariants every accepted state satisfies.

Operations mutate a copy, then run these on the hosts they touched; a
desired-state file runs them on every host. The first error refuses the
change. Design advice that is not refused lives in `lint`.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from ..errors import InvalidArgument, VmknetError
from ..model import Datacenter, names
from ..model.names import NameRule
from .addresses import check_addresses
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


def check_names(dc: Datacenter) -> Iterator[VmknetError]:
    """SEC-5: every name obeys its kind's rule, also after an operation bypassed the model."""

    def each(rule: NameRule, keys: Iterable[str], path: str) -> Iterator[VmknetError]:
        for key in keys:
            problem = rule.problem(key)
            if problem is not None:
                yield InvalidArgument(problem, path=f"{path}/{key}" if path else key,
                                      field=rule.kind, name=key)

    yield from each(names.HOST, dc.hosts, "hosts")
    yield from each(names.CLUSTER, dc.clusters, "clusters")
    yield from each(names.ROUTER, dc.physical.routers, "physical/routers")
    for dvs_name, dvs in dc.distributed_switches.items():
        yield from each(names.DVS, [dvs_name], "distributedSwitches")
        yield from each(names.UPLINK, dvs.uplinks, f"distributedSwitches/{dvs_name}/uplinks")
        yield from each(names.DVPORTGROUP, dvs.portgroups,
                        f"distributedSwitches/{dvs_name}/portgroups")
    for host_name, host in dc.hosts.items():
        base = f"hosts/{host_name}"
        yield from each(names.NIC, host.nics, f"{base}/nics")
        yield from each(names.DATASTORE, host.storage.nfs, f"{base}/storage/nfs")
        for vs_name, vswitch in host.vswitches.items():
            yield from each(names.VSWITCH, [vs_name], f"{base}/vswitches")
            yield from each(names.PORTGROUP, vswitch.portgroups,
                            f"{base}/vswitches/{vs_name}/portgroups")
    # netstack names: NS-1 in check_stacks; vmknic names in check_host_references


def check(dc: Datacenter, hosts: Iterable[str] | None = None) -> list[VmknetError]:
    """All violations; `hosts` limits the per-host checks to the ones an operation touched."""
    errors = list(check_names(dc))
    errors.extend(check_datacenter_references(dc))
    for name in dc.hosts.keys() if hosts is None else hosts:
        if name in dc.hosts:
            errors.extend(check_host(dc, name))
    errors.extend(check_addresses(dc, hosts))
    return errors


def ensure_valid(dc: Datacenter, hosts: Iterable[str] | None = None) -> None:
    """Raise the first violation, if any."""
    errors = check(dc, hosts)
    if errors:
        raise errors[0]
