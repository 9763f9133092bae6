"""`vmknet host status`: what the controller knows of each host's agent (MGMT-1, MGMT-3)."""

from __future__ import annotations

import json
import time
from typing import Any

import click

from .context import AppContext, pass_app, reported
from .output import table

COLUMNS = ["host", "condition", "connected", "last heartbeat", "links", "agent pid",
           "realised/desired", "last change", "error"]


def _age(stamp: float | None, now: float) -> str:
    return "never" if stamp is None else f"{max(0.0, now - stamp):.1f} s ago"


def _generations(h: dict[str, Any]) -> str:
    """The inventory generation the host's agent realised, and the one it should (MGMT-3)."""
    realised, desired = h.get("realisedGeneration"), h.get("desiredGeneration")
    if desired is None:
        return "-"
    return f"{'-' if realised is None else realised}/{desired}"


def rows(hosts: list[dict[str, Any]], now: float) -> list[list[object]]:
    out: list[list[object]] = []
    for h in hosts:
        links = "; ".join(f"{lk['vmk']} {lk['address']} {_age(lk['lastHeartbeat'], now)}"
                          for lk in h["links"])
        change = h.get("lastChange") or {}
        last = (f"{change['state']} {_age(change.get('time'), now)}"
                + (f": {change['error']}" if change.get("error") else "")) if change else ""
        out.append([h["host"], h["condition"], "yes" if h["connected"] else "no",
                    _age(h["lastHeartbeat"], now), links, h["agentPid"], _generations(h),
                    last, h["error"] or ""])
    return out


@click.command("status")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_app
def host_status(app: AppContext, as_json: bool) -> None:
    """Each host's agent as the controller sees it: condition, heartbeats per management link."""
    from ..controller.client import ControllerClient
    from ..lab.binding import require_lab

    with reported():
        hosts = ControllerClient(require_lab(app.inventory).name).host_status()
    if as_json:
        click.echo(json.dumps(hosts, indent=2))
    else:
        table(COLUMNS, rows(hosts, time.time()))
