"""Desired-state commands: validate, plan, apply, show, lint, events."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path

import click
import yaml

from ..errors import VmknetError, exit_code
from ..events import Event
from ..inventory import Inventory
from ..model import Datacenter
from ..state import load_file
from ..state.diff import Change, format_plan
from .context import AppContext, pass_app, reported
from .output import emit_json, say, severity_style, table, warn

STATE_FILE = click.Path(exists=True, dir_okay=False, path_type=Path)
SEVERITIES = ("info", "warning", "error")
_PLAN_STYLE = {"+": "green", "-": "red", "~": "yellow", "!": "magenta"}


def load_desired(path: Path) -> Datacenter:
    """Read a desired-state file; schema errors raise FileFormatError (reported by the caller)."""
    return load_file(path)


def error_line(err: VmknetError) -> str:
    """`Error [CODE]: path: message`, the path only when the message does not carry it already."""
    path = err.details.get("path")
    where = f"{path}: " if path and str(path) not in err.message else ""
    return f"Error [{err.code}]: {where}{err.message}"


def print_events(events: Sequence[Event]) -> None:
    for event in events:
        say(f"{event.rule} {event.path}: {event.message}", style="yellow")


def print_plan(changes: list[Change]) -> None:
    if not changes:
        say("No changes.", style="green")
        return
    for line in format_plan(changes):
        say(line, style=_PLAN_STYLE.get(line[:1]))
    say(f"Plan: {len(changes)} change{'s' if len(changes) != 1 else ''}.", style="bold")


@click.command()
@click.argument("file", type=STATE_FILE)
def validate(file: Path) -> None:
    """Check FILE: schema and every refusal rule.

    Prints each error with its code and path; changes nothing.
    """
    with reported():
        desired = load_desired(file)
    errors = Inventory.validate(desired)
    for err in errors:
        warn(error_line(err))
    if errors:
        warn(f"{file}: refused, {len(errors)} error{'s' if len(errors) != 1 else ''}")
        sys.exit(exit_code(errors[0]))
    say(f"{file}: valid ({len(desired.hosts)} hosts, {len(desired.clusters)} clusters, "
        f"{len(desired.distributed_switches)} distributed switches)", style="green")


@click.command()
@click.argument("file", type=STATE_FILE)
@pass_app
def plan(app: AppContext, file: Path) -> None:
    """The ordered changes that would make the store hold FILE."""
    with reported():
        changes = app.inventory.plan(load_desired(file)).changes
    print_plan(changes)


@click.command()
@click.argument("file", type=STATE_FILE)
@click.option("--yes", "-y", is_flag=True, help="Apply without asking.")
@click.option("--max-unavailable", default="50%", show_default=True, metavar="N|P%",
              help="In a lab, hosts changed at once by their agents (MGMT-3).")
@pass_app
def apply(app: AppContext, file: Path, yes: bool, max_unavailable: str) -> None:
    """Make the store hold FILE, all or nothing.

    In a lab whose controller runs, the controller makes the change: it rolls
    it out to the hosts' agents, `--max-unavailable` at a time.
    """
    with reported():
        from ..controller.rollout import parse_max_unavailable

        parse_max_unavailable(max_unavailable)  # refuse a bad value before asking anything
        the_plan = app.inventory.plan(load_desired(file))
        print_plan(the_plan.changes)
        if not the_plan.changes:
            return
        if not yes:
            click.confirm("Apply these changes?", abort=True)
        app.inventory.apply(the_plan, max_unavailable)
    n = len(the_plan.changes)
    say(f"Applied {n} change{'s' if n != 1 else ''}.", style="green")
    rollout = app.inventory.rollout
    if rollout is not None:
        say(f"Rolled out by the hosts' agents, {max_unavailable} at a time: "
            + " | ".join(", ".join(f"{h} {(rollout.host_seconds.get(h) or 0) * 1000:.1f} ms"
                                   for h in b) for b in rollout.batches))


@click.command()
@click.option("--json", "as_json", is_flag=True, help="JSON instead of YAML.")
@pass_app
def show(app: AppContext, as_json: bool) -> None:
    """Print the store as a desired-state file.

    `vmknet show > f.yaml && vmknet apply f.yaml` changes nothing.
    """
    with reported():
        text = app.inventory.show()
    if as_json:
        emit_json(yaml.safe_load(text))
    else:
        click.echo(text, nl=not text.endswith("\n"))


@click.command()
@click.argument("file", type=STATE_FILE, required=False)
@click.option("--json", "as_json", is_flag=True, help="Findings as a JSON list.")
@click.option("--severity", type=click.Choice(SEVERITIES), default="info", show_default=True,
              help="Show findings of this severity and above.")
@pass_app
def lint(app: AppContext, file: Path | None, as_json: bool, severity: str) -> None:
    """Lint FILE (or the store); exit 1 on an error finding."""
    with reported():
        dc = load_desired(file) if file is not None else app.inventory.read()
        findings = app.inventory.lint(dc)
    floor = SEVERITIES.index(severity)
    shown = [f for f in findings if SEVERITIES.index(str(f.severity)) >= floor]
    if as_json:
        emit_json([{"rule": f.rule, "severity": str(f.severity), "path": f.path,
                    "message": f.message, "hint": f.hint} for f in shown])
    elif shown:
        table(["severity", "rule", "path", "message", "hint"],
              [[str(f.severity), f.rule, f.path, f.message, f.hint] for f in shown],
              row_style=severity_style)
        say(_lint_summary([str(f.severity) for f in shown]))
    else:
        say("No findings.", style="green")
    if any(str(f.severity) == "error" for f in findings):
        sys.exit(1)


def _lint_summary(severities: list[str]) -> str:
    parts = [f"{severities.count(s)} {s}{'s' if severities.count(s) != 1 else ''}"
             for s in reversed(SEVERITIES) if s in severities]
    return ", ".join(parts) + "."


@click.command()
@click.option("--limit", "-n", type=click.IntRange(min=1), default=50, show_default=True)
@click.option("--json", "as_json", is_flag=True)
@pass_app
def events(app: AppContext, limit: int, as_json: bool) -> None:
    """Side effects the store recorded (EX-1, NS-7, ...).

    E.g. EX-1 taking vMotion off the default-stack adapters when the first
    vmotion-stack adapter appears.
    """
    with reported():
        recorded = app.inventory.events(limit)
    if as_json:
        click.echo(json.dumps([{"rule": e.rule, "path": e.path, "message": e.message}
                               for e in recorded], indent=2))
    elif recorded:
        table(["rule", "path", "message"], [[e.rule, e.path, e.message] for e in recorded])
    else:
        say("No events.")


COMMANDS = (validate, plan, apply, show, lint, events)
