"""`vmknet lab up | status | down | list`: the inventory realised in kernel namespaces.

The lab modules are imported inside the commands: they load netlink (pyroute2,
~0.2 s), which every other vmknet command should not pay for at start-up.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from ..lab.binding import DEFAULT_NAME
from .context import AppContext, pass_app, reported
from .output import say, table

if TYPE_CHECKING:
    from ..lab import lifecycle
    from ..lab.realise import Realised


@click.group()
def lab() -> None:
    """Build the inventory in network namespaces (one per host stack), check it, remove it."""


@lab.command()
@click.argument("file", required=False,
                type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--name", default=DEFAULT_NAME, show_default=True,
              help="Lab name: its namespaces are vmkl-NAME.*")
@click.option("--controllers", type=click.IntRange(1, 5), default=None,
              help="Controllers to run, one elected, the others standbys (etcd store only) "
                   "[default: 1, or what the lab had].")
@click.option("--lease-ttl", type=click.IntRange(2, 600), default=None,
              help="Seconds, etcd store only: a standby takes over within this after the "
                   "leader dies; an agent's lease too [default: 5].")
@pass_app
def up(app: AppContext, file: Path | None, name: str, controllers: int | None,
       lease_ttl: int | None) -> None:
    """Bind the store to a lab and build FILE in the kernel [default: examples/lab.yaml].

    Refuses when a lab of that name exists for another store; re-applies when
    it is this store's. Waits for STP and for the controller to reach every
    management adapter (REQ-5), then prints what it built.
    """
    from ..lab import lifecycle

    with reported():
        path = file if file is not None else lifecycle.default_lab_file()
        report = lifecycle.up(app.inventory, path, name, controllers=controllers,
                              lease_ttl=lease_ttl)
    _print_up(report, path)


def _print_up(report: lifecycle.UpReport, path: Path) -> None:
    from ..lab import summary

    lab_, dc, state = report.lab, report.dc, report.state
    table(summary.ADAPTER_COLUMNS, summary.adapter_rows(dc, state, lab_.name),
          title="VMkernel adapters (one namespace per host TCP/IP stack)")
    table(summary.SEGMENT_COLUMNS, summary.segment_rows(dc, state, lab_.name),
          title="Physical network: one segment (bridge) per VLAN")
    table(summary.ROUTER_COLUMNS, summary.router_rows(dc, lab_.name),
          title="Routers and controller")
    arrays = summary.array_rows(dc, lab_.name)
    if arrays:
        table(summary.ARRAY_COLUMNS, arrays, title="Storage arrays (real iSCSI and NFS servers)")
    for note in report.notes:
        say(note, style="yellow")
    if report.realised is not None:
        _print_realised(report.realised)
    if report.management is not None:
        m = report.management
        up_ = sum(1 for h in m.hosts if h["connected"])
        say(f"Management: controller pid {m.controller_pid}, {len(m.started)} agents started, "
            f"{up_}/{len(m.hosts)} hosts heartbeating over their management adapters "
            f"({m.seconds:.1f} s)")
        from ..api import files

        served = files.served_url(lab_.name)
        if served is not None:
            say(f"REST API: {served} (a token: vmknet api token create --role read-only)")
    counts = ", ".join(f"{n} {k}" for k, n in summary.totals(state).items())
    verb = "re-applied" if report.reapplied else "up"
    say(f"Lab {lab_.name!r} {verb} from {path}: {len(dc.hosts)} hosts, {counts}; "
        f"{report.seconds:.1f} s", style="bold green")


def _print_realised(done: Realised) -> None:
    seconds = done.result.seconds
    line = f"Kernel: {len(done.result.ops)} ops in {seconds.get('execute', 0.0):.2f} s"
    if done.converge_seconds is not None:
        line += f", STP settled after {done.converge_seconds:.1f} s"
    say(line)
    for target, rtt in done.replies.items():
        answer = f"{rtt * 1000:.2f} ms" if rtt is not None else "no reply"
        say(f"  controller -> {target.host} {target.vmk} {target.address}: {answer}")


@lab.command()
@click.option("--repair", is_flag=True, help="Re-apply the inventory to fix the drift.")
@pass_app
def status(app: AppContext, repair: bool) -> None:
    """Realised vs desired, per namespace; exit 1 on drift (0 after --repair fixed it)."""
    from ..lab import lifecycle

    with reported():
        state = lifecycle.status(app.inventory)
        _print_controllers(state.lab.name, str(lifecycle.store_of(app.inventory)))
        if repair and not state.in_sync:
            _print_drift(state)
            lifecycle.repair(app.inventory, state)
            say("Repaired: re-applied the inventory"
                + (f", started the {', '.join(state.stopped)}" if state.stopped else "") + ".",
                style="yellow")
            state = lifecycle.status(app.inventory)
    _print_status(state)
    if not state.in_sync:
        sys.exit(1)


def _print_controllers(lab_name: str, store: str) -> None:
    """Which controller leads, on an etcd store (one controller, SQLite: nothing to say)."""
    from ..controller import lab as mgmt
    from ..store.paths import is_etcd

    if not is_etcd(store):
        return
    seen = mgmt.controllers(lab_name, store)
    others = [str(p) for p in seen.pids if p != seen.leader_pid]
    say(f"Controllers: {len(seen.pids)} of {seen.wanted} running; leader "
        f"{seen.leader or 'none (an election is under way)'}"
        + (f", serving as pid {seen.leader_pid}" if seen.leader_pid else "")
        + (f"; standby pid {', '.join(others)}" if others else ""))


def _print_status(state: lifecycle.Status) -> None:
    from ..lab import summary

    counts = ", ".join(f"{n} {k}" for k, n in summary.totals(state.desired).items())
    say(f"Lab {state.lab.name!r} ({state.lab.prefix}*): desired {counts}")
    for target, rtt in state.replies.items():
        answer = f"{rtt * 1000:.2f} ms" if rtt is not None else "NO REPLY"
        say(f"  controller -> {target.host} {target.vmk} {target.address}: {answer}")
    if state.in_sync:
        say("In sync: the kernel holds exactly the desired state; controller and agents run.",
            style="green")
        return
    for what in state.stopped:
        say(f"  not running: the {what}", style="red")
    _print_drift(state)


def _print_drift(state: lifecycle.Status) -> None:
    if not state.drift:
        return
    total = sum(len(lines) for lines in state.drift.values())
    say(f"Drift: {total} differences in {len(state.drift)} namespaces "
        "(what the kernel lacks, as plan steps)", style="bold red")
    for ns, lines in state.drift.items():
        say(f"  {ns}:")
        for line in lines:
            say(f"    {line}", style="red")


@lab.command()
@click.option("--name", default=None, help="The lab [default: this store's, else 'lab'].")
@click.option("--all", "every", is_flag=True, help="Every lab (every vmkl-* namespace).")
@pass_app
def down(app: AppContext, name: str | None, every: bool) -> None:
    """Remove every namespace of the lab, even after a crash, and unbind its store."""
    if name is not None and every:
        raise click.UsageError("give --name or --all, not both")
    from ..lab import lifecycle

    with reported():
        done = lifecycle.down(app.inventory, name, every=every)
    for item in done:
        unbound = f"; unbound {', '.join(map(str, item.unbound))}" if item.unbound else ""
        say(f"Lab {item.name!r} down: removed {len(item.removed)} namespaces{unbound}")
    if not done:
        say("No labs.")


@lab.command("list")
@pass_app
def list_(app: AppContext) -> None:
    """Labs present in the kernel (by namespace prefix) and the store that binds each."""
    from ..lab import lifecycle

    with reported():
        found = lifecycle.labs(app.inventory)
    table(("Lab", "Namespaces", "Store", "This store"),
          [[i.name, str(i.namespaces), str(i.store) if i.store else "-",
            "yes" if i.this_store else "no"] for i in found])
