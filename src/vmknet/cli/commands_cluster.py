"""`vmknet cluster status CLUSTER [--json]`: vSphere HA's view of a cluster (HA-1..3)."""

from __future__ import annotations

import json
from typing import Any

import click

from ..errors import InvalidArgument, NotFound
from .context import AppContext, pass_app, reported
from .output import table

HOST_COLUMNS = ["host", "role", "state", "primary", "links (last heartbeat)",
                "datastores (last heartbeat)"]
VM_COLUMNS = ["vm", "host", "priority", "protected", "why not"]


def _links(row: dict[str, Any]) -> str:
    return "; ".join(f"{lk['remote']}->{lk['local']} {lk['ago']:.1f} s"
                     for lk in row.get("links", [])) or "-"


def _stores(row: dict[str, Any]) -> str:
    return "; ".join(f"{ds} {'-' if ago is None else f'{ago:.1f} s'}"
                     for ds, ago in row.get("datastores", {}).items()) or "-"


def host_rows(status: dict[str, Any]) -> list[list[object]]:
    return [[h, r.get("role") or "-", r["state"], r.get("primary") or "-", _links(r),
             _stores(r)] for h, r in status["hosts"].items()]


def vm_rows(status: dict[str, Any]) -> list[list[object]]:
    return [[n, v["host"], v["priority"], "yes" if v["protected"] else "no", v["why"] or ""]
            for n, v in status["vms"].items()]


@click.command("status")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_app
def cluster_status(app: AppContext, name: str, as_json: bool) -> None:
    """vSphere HA: the primary, each host's state, heartbeats per link and datastore, VMs."""
    from ..ha import status, view
    from ..lab.binding import require_lab

    with reported():
        dc = app.inventory.read()
        cluster = dc.clusters.get(name)
        if cluster is None:
            raise NotFound(f"Cluster {name} not found: see 'vmknet cluster list'", cluster=name)
        if not cluster.ha:
            raise InvalidArgument(f"Cluster {name} does not have HA on (ha: true)",
                                  code="HaNotConfigured")
        lab = require_lab(app.inventory).name
        got = status.cluster_status(name, list(cluster.hosts), lambda h: view.read(lab, h))
    if as_json:
        click.echo(json.dumps(got, indent=2))
        return
    primaries = ", ".join(got["primaries"]) or "none"
    click.echo(f"Cluster {name}: vSphere HA, primary {primaries}"
               + (" (partitioned: one primary per side)" if got["partitioned"] else ""))
    table(HOST_COLUMNS, host_rows(got))
    if got["vms"]:
        click.echo("")
        table(VM_COLUMNS, vm_rows(got))
