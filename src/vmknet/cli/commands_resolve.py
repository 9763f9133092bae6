"""`vmknet resolve SERVICE SRC DST`: which adapter pairs carry a flow (SPEC section 5)."""

from __future__ import annotations

from typing import Any

import click

from ..model import Service
from .context import AppContext, pass_app, reported
from .output import emit_json, say, table


def parse_service(ctx: click.Context, param: click.Parameter, value: str) -> Service:
    """API name (`vmotion`), esxcli tag (`VMotion`) or a short name (`ft`), any case."""
    try:
        return Service.parse(value)
    except ValueError as err:
        raise click.BadParameter(str(err), ctx=ctx, param=param) from None


@click.command()
@click.argument("service", callback=parse_service)
@click.argument("source")
@click.argument("target")
@click.option("--json", "as_json", is_flag=True, help="Flows as a JSON list.")
@pass_app
def resolve(app: AppContext, service: Service, source: str, target: str, as_json: bool) -> None:
    """Adapter pairs carrying SERVICE from host SOURCE to TARGET.

    SERVICE is an API name (vmotion), an esxcli tag (VMotion) or an alias
    (provisioning, ft, vsan, replication, ...).
    """
    with reported():
        flows = app.inventory.resolve(service, source, target)
    if as_json:
        emit_json([_flow_dict(f) for f in flows])
        return
    table(
        ["pair", "source vmk", "netstack", "source address", "target vmk", "target address",
         "next hop", "reason"],
        [[f"{i}/{len(flows)}", f.source.vmknic, f.source.netstack, f.source.address,
          f.target.vmknic, f.target.address, f.next_hop or "on-link", f.reason]
         for i, f in enumerate(flows, 1)],
        title=f"{service.tag} {source} -> {target}",
    )
    if not flows:
        say("No adapter pair.")


def _endpoint(e: Any) -> dict[str, Any]:
    address = e.address
    return {"host": e.host, "vmknic": e.vmknic, "netstack": e.netstack,
            "address": str(address) if address is not None else None}


def _flow_dict(flow: Any) -> dict[str, Any]:
    return {
        "source": _endpoint(flow.source),
        "target": _endpoint(flow.target),
        "nextHop": str(flow.next_hop) if flow.next_hop is not None else None,
        "reason": flow.reason,
    }
