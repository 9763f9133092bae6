"""What the `vm`, `vmotion`, provisioning and replication commands share: the `vm` group,
name checks, the bound lab and the vMotion report.

Its own module so that `commands_vm` (which hands `create --disk` and `vmotion
--datastore` to `commands_provision`) and `commands_provision` (which adds its
verbs to the `vm` group) both import it and not each other: no import cycle.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import click

from ..lab import Lab, require_lab
from ..model import Datacenter, names
from ..model.names import NameRule
from ..vm.units import human_bytes, parse_rate
from .context import AppContext, reported
from .output import say, table

if TYPE_CHECKING:  # the engine loads numpy and cryptography: only `vmotion` imports it
    from ..vmotion.report import MigrationReport

EXIT_ABORTED = 1


def valid(*given: tuple[NameRule, str | None, str]) -> None:
    """Refuse bad names before anything is looked up (SEC-5): (rule, value, option) each."""
    with reported():
        for rule, value, option in given:
            if value is not None:
                names.require(rule, value, option)


def vm_name(name: str) -> None:
    valid((names.VM, name, "VM name"))


def rate(text: str, option: str, minimum: int = 1) -> int:
    with reported():
        return parse_rate(text, what=option, minimum=minimum)


def bound(app: AppContext) -> tuple[Datacenter, Lab]:
    with reported():
        lab = require_lab(app.inventory)
        return app.inventory.read(), lab


def in_controller(app: AppContext, kind: str, params: dict[str, Any],
                  progress: Callable[[dict[str, Any]], None]) -> dict[str, Any] | None:
    """Run `kind` as a task of the lab's controller and follow it: its report.

    None when the lab has no controller running: the command runs the operation
    itself (a lab without `physical.controller`).
    """
    with reported():
        door = app.inventory.controller()
        if door is None:
            return None
        return door.task(kind, {k: v for k, v in params.items() if v is not None}, progress)


def task_params(name: str, target: str, options: dict[str, Any]) -> dict[str, Any]:
    """The controller's vmotion task parameters (controller/tasks.py) for the CLI's options."""
    return {"vm": name, "target": target, "maxDowntimeMs": options["max_downtime"] * 1000,
            "encryption": options["encryption"], "timeout": options["timeout"],
            "rateLimit": options["rate_limit"]}


@click.group("vm")
def vm() -> None:
    """Simulated VMs on lab hosts: real memory, written at a dirty rate, migratable."""


def print_report(r: MigrationReport) -> None:
    ok = r.completed
    say(f"vMotion {r.vm} {r.source} -> {r.target}: {r.result} ({r.reason})",
        style="green" if ok else "bold red")
    downtime = f"{r.downtime_ms:.1f} ms" if r.downtime_ms is not None else "-"
    click.echo(f"total {r.total_seconds:.2f} s, downtime {downtime} (max {r.max_downtime_ms:.0f}"
               f" ms), {len(r.rounds)} rounds, {human_bytes(r.bytes)} at {r.gbps:.2f} Gbit/s, "
               f"zero pages skipped {r.zero_pages_skipped}")
    if r.verify_ms is not None:  # after resume: not part of the downtime
        click.echo(f"verify after resume: source hashed its frozen memory in {r.digest_ms:.1f}"
                   f" ms, committed {r.verify_ms:.1f} ms after the target resumed")
    enc = f"{r.cipher}, {r.crypto_seconds * 1000:.0f} ms sealing" if r.encrypted else "plain"
    click.echo(f"encryption {r.encryption_mode}: {enc} ({r.encryption_note or '-'})")
    if r.throttled:
        click.echo(f"throttled: {r.throttle_reason}")
    table(("Round", "Pages", "Zero", "Bytes", "Seconds", "Dirty Left", "Stunned"),
          [[s.round, s.pages, s.zero_pages, s.bytes, f"{s.seconds:.3f}", s.dirty_left,
            "yes" if s.stunned else "no"] for s in r.rounds])
    table(("Source", "Target", "Netstack", "Next Hop", "Bytes", "Seconds", "Gbit/s", "Failed"),
          [[f"{p.source_vmk} {p.source_address}", f"{p.target_vmk} {p.target_address}",
            p.netstack, p.next_hop, p.bytes, f"{p.seconds:.3f}", f"{p.gbps:.2f}", p.failed]
           for p in r.pairs])
    if r.digest:
        click.echo(f"memory digest at switchover {r.digest[:16]} (source = target)")
