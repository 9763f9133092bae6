"""`vmknet vsan ...`: the vsanDatastore of the bound lab's vSAN clusters.

    vmknet vsan start [--cluster C]          a vSAN node per host (membership, object I/O)
    vmknet vsan stop [--host H]
    vmknet vsan status [--json]              nodes: role, partition, capacity used
    vmknet vsan object create NAME --size 256MiB [--ftt 1] [--cluster C]
    vmknet vsan object list [--json]         where each component is, and its state
    vmknet vsan object delete NAME
    vmknet vsan resync status [--json]       bytes left to copy per replica
    vmknet vsan health [--json]              vSAN's network health checks (exit 1 on red)

In a lab without a controller `start` plays the controller: the cluster's key, each
node's unicast peer list (VSAN-1). `lab down` ends the nodes with the namespaces.
"""

from __future__ import annotations

import click

from ..errors import InvalidArgument
from ..model import names
from ..vm.manage import via_controller
from ..vm.units import human_bytes, parse_size
from ..vsan import config, health, objects, procs, report
from .context import AppContext, pass_app, reported
from .output import emit_json, say, table
from .vm_common import bound, valid

MAX_OBJECT = 1 << 40


def _cluster(app: AppContext, cluster: str | None) -> str:
    dc, _lab = bound(app)
    with reported():
        clusters = config.vsan_clusters(dc)
        if cluster is None:
            if len(clusters) != 1:
                raise InvalidArgument(f"Name the vSAN cluster with --cluster (one of: "
                                      f"{', '.join(clusters) or 'none: set vsan: true'})")
            return clusters[0]
        if cluster not in clusters:
            raise InvalidArgument(f"{cluster} is not a vSAN cluster (vsan: true)")
        return cluster


cluster_option = click.option("--cluster", default=None,
                              help="The vSAN cluster [default: the only one].")
json_flag = click.option("--json", "as_json", is_flag=True, help="Print JSON.")


@click.group("vsan")
def vsan() -> None:
    """vSAN: a cluster datastore mirrored over the hosts' vSAN adapters."""


@vsan.command("start")
@cluster_option
@pass_app
def start_command(app: AppContext, cluster: str | None) -> None:
    """Start a vSAN node on every host of the cluster (those not running yet)."""
    name = _cluster(app, cluster)
    dc, lab = bound(app)
    with reported():
        agents = via_controller(dc, lab.name)
        pids = (procs.start_by_agents if agents else procs.start)(dc, lab.name, name)
    how = " (each its host agent's child)" if agents else ""
    say(f"vSAN cluster {name}: {len(pids)} nodes up{how} ({', '.join(sorted(pids))})")


@vsan.command("stop")
@click.option("--host", default=None, help="One host's node [default: all].")
@pass_app
def stop_command(app: AppContext, host: str | None) -> None:
    """Stop the vSAN nodes (the data stays with the lab)."""
    dc, lab = bound(app)
    with reported():
        agents = via_controller(dc, lab.name)
        stopped = (procs.stop_by_agents if agents else procs.stop)(lab.name, host)
    say(f"Stopped {len(stopped)} vSAN node{'s' if len(stopped) != 1 else ''}.")


@vsan.command("status")
@json_flag
@pass_app
def status_command(app: AppContext, as_json: bool) -> None:
    """The nodes: up, CMMDS role, partition, capacity used."""
    dc, lab = bound(app)
    rows = report.node_rows(dc, lab.name)
    if as_json:
        emit_json(rows)
        return
    table(("Cluster", "Host", "Node", "Role", "Partition", "Capacity", "Used"),
          [[r["cluster"], r["host"], f"up (pid {r['pid']})" if r["up"] else "down",
            r["role"], ",".join(r["partition"]),
            "witness" if r["witness"] else human_bytes(r["capacity"]),
            human_bytes(r["used"])] for r in rows])


@vsan.group("object")
def object_group() -> None:
    """vSAN objects (a VM disk is one)."""


@object_group.command("create")
@click.argument("name")
@click.option("--size", required=True, help="e.g. 256MiB, 1GiB.")
@click.option("--ftt", type=click.IntRange(0, 1), default=1, show_default=True,
              help="Failures to tolerate: 1 mirrors on two hosts with a witness on a third.")
@cluster_option
@pass_app
def create_command(app: AppContext, name: str, size: str, ftt: int,
                   cluster: str | None) -> None:
    """Create an object on the vsanDatastore."""
    valid((names.VM, name, "object name"))
    with reported():
        nbytes = parse_size(size, what="--size", minimum=1, maximum=MAX_OBJECT)
    which = _cluster(app, cluster)
    dc, lab = bound(app)
    with reported():
        meta = objects.create(dc, lab.name, which, name, nbytes, ftt)
    say(f"Created {name} ({meta.uuid}), {human_bytes(nbytes)}, FTT={ftt}: "
        + ", ".join(f"{c.kind} {c.id} on {c.host}" for c in meta.components))


@object_group.command("list")
@json_flag
@pass_app
def list_command(app: AppContext, as_json: bool) -> None:
    """Every object: its health and where each component is, in which state."""
    dc, lab = bound(app)
    rows = report.object_rows(dc, lab.name)
    if as_json:
        emit_json(rows)
        return
    table(("Object", "UUID", "Size", "FTT", "Health", "Component", "Host", "Type", "State"),
          [[o["name"] if i == 0 else "", o["uuid"] if i == 0 else "",
            human_bytes(o["size"]) if i == 0 else "", o["ftt"] if i == 0 else "",
            o["health"] if i == 0 else "", c["id"], c["host"], c["type"], c["state"]]
           for o in rows for i, c in enumerate(o["components"])])


@object_group.command("delete")
@click.argument("name")
@pass_app
def delete_command(app: AppContext, name: str) -> None:
    """Delete an object and its components."""
    dc, lab = bound(app)
    with reported():
        meta = objects.find(lab.name, name)
        objects.delete(dc, lab.name, meta)
    say(f"Deleted {meta.name} ({meta.uuid}).")


@vsan.group("resync")
def resync_group() -> None:
    """Resync of replicas that missed writes."""


@resync_group.command("status")
@json_flag
@pass_app
def resync_command(app: AppContext, as_json: bool) -> None:
    """Bytes left to copy to each replica that is absent or resyncing."""
    _dc, lab = bound(app)
    rows = report.resync_rows(lab.name)
    total = sum(r["bytesLeft"] for r in rows)
    if as_json:
        emit_json({"bytesLeft": total, "replicas": rows})
        return
    table(("Object", "From", "To", "State", "Bytes left"),
          [[r["name"], r["from"], r["to"], r["state"], human_bytes(r["bytesLeft"])]
           for r in rows])
    say(f"Total bytes left to resync: {human_bytes(total)} ({total} bytes)")


@vsan.command("health")
@json_flag
@cluster_option
@pass_app
def health_command(app: AppContext, as_json: bool, cluster: str | None) -> None:
    """vSAN's network health checks by name; exit status 1 when one is red."""
    which = _cluster(app, cluster)
    dc, lab = bound(app)
    with reported():
        result = health.run(dc, lab.name, which)
    if as_json:
        emit_json(result)
    else:
        table(("Check", "Status", "Detail"),
              [[c["name"], c["status"], c["detail"]] for c in result["checks"]])
        for c in result["checks"]:
            for p in c["problems"]:
                say(f"  {c['name']}: {p}")
        say(f"Overall: {result['overall']}")
    if result["overall"] == "red":
        raise SystemExit(1)


COMMANDS = (vsan,)
