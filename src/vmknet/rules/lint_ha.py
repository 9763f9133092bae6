"""Lint checks of vSphere HA's settings (SPEC section 14), as vSphere's configuration issues.

- HA-1: a host of an HA cluster with fewer NFS datastores than `das.heartbeatdsperhost`
  (vSphere: "The number of vSphere HA heartbeat datastores for this host is 1, which is less
  than required: 2"); without them the primary cannot tell an isolated or partitioned host
  from a failed one, and may restart VMs that still run. Checked once some member mounts a
  shared datastore: a cluster without shared storage cannot restart VMs from it anyway
  (HA-3), which is not a heartbeating issue.
- HA-2: an HA cluster that switched the default isolation address off
  (`das.usedefaultisolationaddress: false`) and named none (`das.isolationaddressN`), or a
  host of one whose isolation response powers VMs off with no gateway to ping: cut off from
  its peers it can never find out it is isolated, so its isolation response never runs.
  (A cluster that leaves VMs powered on and has no gateway is not flagged: nothing depends
  on the verdict there but a report.)
"""

from __future__ import annotations

from collections.abc import Iterator

from ..model import DEFAULT_STACK
from .lint_base import Context, Finding, host_finding


def check_heartbeat_datastores(ctx: Context) -> Iterator[Finding]:
    for cl_name, cl in ctx.dc.clusters.items():
        if not cl.ha:
            continue
        want = cl.das.heartbeat_datastores()
        if not any(ctx.dc.hosts[h].storage.nfs for h in ctx.members(cl)):
            continue
        for host in ctx.members(cl):
            have = sum(1 for m in ctx.dc.hosts[host].storage.nfs.values() if m.servers)
            if have < want:
                yield host_finding(
                    "HA-1", "warning", host,
                    f"Host {host} in HA cluster {cl_name} has {have} shared datastore(s) for "
                    f"heartbeating, fewer than das.heartbeatdsperhost ({want}): a failed host "
                    "cannot be told from an isolated or partitioned one",
                    "Mount more NFS datastores on every host of the cluster "
                    "('esxcli storage nfs add')")


def check_isolation_addresses(ctx: Context) -> Iterator[Finding]:
    for cl_name, cl in ctx.dc.clusters.items():
        if not cl.ha or cl.das.isolation_addresses():
            continue
        for host in ctx.members(cl):
            stack = ctx.dc.hosts[host].netstacks.get(DEFAULT_STACK)
            gateway = stack is not None and stack.gateway is not None
            if cl.das.use_default_isolation_address() and (
                    gateway or cl.das.isolation_response == "none"):
                continue
            yield host_finding(
                "HA-2", "warning", host,
                f"Host {host} in HA cluster {cl_name} has no isolation address: cut off from "
                "its peers it cannot tell that it is isolated, and never applies its "
                "isolation response",
                "Set das.isolationaddress0 (an address on the management network that "
                "answers ping), or a default gateway on the management stack")
