"""`vmknet vm power-off|power-on|migrate|clone|snapshot|files`: a VM's files over NFC.

    vmknet vm create web01 -H esx01 --disk 8GiB [--datastore ds1]
    vmknet vm power-off web01
    vmknet vm migrate web01 --to esx02 [--datastore ds2] [--json]
    vmknet vm clone web01 --to esx03 --name web02
    vmknet vm snapshot create|list|revert web01 [NAME]
    vmknet vmotion web01 --to esx02 --datastore ds2      (commands_vm: disks + memory)

Datastores live under $VMKNET_DATASTORE_BASE (default /var/lib/vmknet/labs).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

import click

from ..model import names
from ..provision import cold, files, placement, snapshots
from ..vm.units import (
    MAX_DISK,
    MAX_DISK_DATA,
    MAX_MEMORY,
    PAGE_SIZE,
    human_bytes,
    parse_rate,
    parse_size,
)
from .context import AppContext, pass_app, reported
from .output import emit_json, is_terminal, say, table
from .vm_common import (
    EXIT_ABORTED,
    bound,
    in_controller,
    print_report,
    rate,
    task_params,
    valid,
    vm,
    vm_name,
)


class TransferBar:
    """A rich progress bar on a terminal; a plain line per quarter otherwise."""

    def __init__(self, title: str, enabled: bool = True) -> None:
        self.title, self.enabled = title, enabled
        self.live: Any = None
        self.quarter = -1

    def __enter__(self) -> TransferBar:
        if self.enabled and is_terminal():
            from rich.progress import (
                BarColumn,
                DownloadColumn,
                Progress,
                TextColumn,
                TransferSpeedColumn,
            )

            self.live = Progress(TextColumn("{task.description}"), BarColumn(),
                                 DownloadColumn(), TransferSpeedColumn(), transient=True)
            self.live.start()
            self.task = self.live.add_task(self.title, total=None)
        return self

    def __exit__(self, *exc: object) -> None:
        if self.live is not None:
            self.live.stop()

    def update(self, done: int, total: int, name: str) -> None:
        if not self.enabled:
            return
        if self.live is not None:
            self.live.update(self.task, completed=done, total=total,
                             description=f"{self.title} {name}")
            return
        quarter = 4 * done // total if total else 4
        if quarter > self.quarter:
            self.quarter = quarter
            click.echo(f"{self.title}: {human_bytes(done)} of {human_bytes(total)} data "
                       f"({25 * quarter}%) {name}")


def print_move(r: dict[str, Any]) -> None:
    """A MoveReport, in its dict form (`to_dict`: what the controller's task answers too)."""
    say(f"{r['operation']} {r['vm']} {r['source']} -> {r['target_vm']} {r['target']}: "
        f"{'completed' if r['completed'] else 'failed'} ({r['reason']})",
        style="green" if r["completed"] else "bold red")
    click.echo(f"{len(r['files'])} files, {human_bytes(r['logical_size'])} logical, "
               f"{human_bytes(r['data_bytes'])} data, {human_bytes(r['bytes_on_wire'])} on the "
               f"wire in {r['copy_seconds']:.2f} s (total {r['seconds']:.2f} s)")
    table(("Source", "Target", "Bytes", "Why (PATH-2)"),
          [[f"{a['source_vmk']} {a['source_stack']} {a['source_address']}",
            f"{a['target_vmk']} {a['target_stack']} {a['target_address']}",
            a["bytes_on_wire"], a["reason"]] for a in r["adapters"]])
    table(("File", "Size", "Data", "Wire", "Seconds", "Resumed"),
          [[f["target"], f["logical_size"], f["data_bytes"], f["bytes_on_wire"],
            f"{f['seconds']:.3f}", f["resumed"]] for f in r["files"]])


def copy_events(bar: TransferBar) -> Callable[[dict[str, Any]], None]:
    """The controller's copy progress events onto the bar."""
    def update(event: dict[str, Any]) -> None:
        if event.get("event") == "copy":
            bar.update(int(event["done"]), int(event["total"]), str(event["file"]))

    return update


def _limit(text: str | None) -> float | None:
    return float(rate(text, "--limit")) if text else None


@vm.command("power-off")
@click.argument("name")
@pass_app
def power_off_command(app: AppContext, name: str) -> None:
    """Stop VM NAME's process; its files and registration stay."""
    vm_name(name)
    _, lab = bound(app)
    with reported():
        p = files.power_off(lab.name, name)
    say(f"VM {name} powered off (files on {p.host}:[{p.datastore}])")


@vm.command("power-on")
@click.argument("name")
@pass_app
def power_on_command(app: AppContext, name: str) -> None:
    """Boot VM NAME from its files on the host that holds them."""
    vm_name(name)
    dc, lab = bound(app)
    with reported():
        rec = files.power_on(dc, lab.name, name)
    say(f"VM {name} runs on {rec.host} (pid {rec.pid})", style="green")


@vm.command("files")
@click.option("--json", "as_json", is_flag=True)
@pass_app
def files_command(app: AppContext, as_json: bool) -> None:
    """VMs with files: host, datastore, power state, disk and snapshots."""
    _, lab = bound(app)
    rows: list[dict[str, Any]] = []
    for p in placement.records(lab.name):
        vmx = files.read_vmx(p)
        rows.append({"vm": p.vm, "host": p.host, "datastore": p.datastore,
                     "power": "on" if files.running(lab.name, p.vm) else "off",
                     "disk": vmx.disk, "disk_size": vmx.disk_size,
                     "snapshots": [s.name for s in vmx.snapshots]})
    if as_json:
        emit_json(rows)
        return
    table(("VM", "Host", "Datastore", "Power", "Disk", "Size", "Snapshots"),
          [[r["vm"], r["host"], r["datastore"], r["power"], r["disk"],
            human_bytes(r["disk_size"]), ", ".join(r["snapshots"])] for r in rows])


@vm.command("migrate")
@click.argument("name")
@click.option("--to", "target", required=True, metavar="HOST")
@click.option("--datastore", default=None, metavar="DS", help="Target datastore [same name].")
@click.option("--limit", default=None, metavar="RATE", help="Bandwidth limit, e.g. 50MB/s.")
@click.option("--json", "as_json", is_flag=True)
@pass_app
def migrate_command(app: AppContext, name: str, target: str, datastore: str | None,
                    limit: str | None, as_json: bool) -> None:
    """Cold-migrate powered-off VM NAME: its files go to HOST over NFC (provisioning)."""
    valid((names.VM, name, "VM name"), (names.HOST, target, "--to"),
          (names.DATASTORE, datastore, "--datastore"))
    bandwidth = _limit(limit)
    with TransferBar(f"migrate {name}", not as_json) as bar:
        done = in_controller(app, "migrate", {"vm": name, "target": target,
                                              "datastore": datastore, "limit": bandwidth},
                             copy_events(bar))
        if done is None:  # a lab without a controller: this process copies
            dc, lab = bound(app)
            with reported():
                done = cold.migrate(dc, lab.name, name, target, datastore=datastore,
                                    progress=bar.update, bandwidth_limit=bandwidth).to_dict()
    emit_json(done) if as_json else print_move(done)


@vm.command("clone")
@click.argument("name")
@click.option("--to", "target", required=True, metavar="HOST")
@click.option("--name", "new", required=True, metavar="NEW", help="Name of the clone.")
@click.option("--datastore", default=None, metavar="DS", help="Target datastore [same name].")
@click.option("--limit", default=None, metavar="RATE", help="Bandwidth limit, e.g. 50MB/s.")
@click.option("--json", "as_json", is_flag=True)
@pass_app
def clone_command(app: AppContext, name: str, target: str, new: str, datastore: str | None,
                  limit: str | None, as_json: bool) -> None:
    """Clone VM NAME to HOST as NEW over NFC; the source keeps its files."""
    valid((names.VM, name, "VM name"), (names.HOST, target, "--to"),
          (names.VM, new, "--name"), (names.DATASTORE, datastore, "--datastore"))
    bandwidth = _limit(limit)
    with TransferBar(f"clone {name}", not as_json) as bar:
        done = in_controller(app, "clone", {"vm": name, "target": target, "name": new,
                                            "datastore": datastore, "limit": bandwidth},
                             copy_events(bar))
        if done is None:  # a lab without a controller: this process copies
            dc, lab = bound(app)
            with reported():
                done = cold.clone(dc, lab.name, name, target, new, datastore=datastore,
                                  progress=bar.update, bandwidth_limit=bandwidth).to_dict()
    emit_json(done) if as_json else print_move(done)


@vm.group("snapshot")
def snapshot() -> None:
    """Disk snapshots of a VM (sparse delta disks)."""


@snapshot.command("create")
@click.argument("name")
@click.argument("snap")
@pass_app
def snapshot_create(app: AppContext, name: str, snap: str) -> None:
    valid((names.VM, name, "VM name"), (names.SNAPSHOT, snap, "snapshot name"))
    _, lab = bound(app)
    with reported():
        s = snapshots.create(lab.name, name, snap)
    say(f"snapshot {s.name} of {name}: {s.disk} is now read-only")


@snapshot.command("list")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True)
@pass_app
def snapshot_list(app: AppContext, name: str, as_json: bool) -> None:
    vm_name(name)
    _, lab = bound(app)
    with reported():
        snaps, current = snapshots.listing(lab.name, name)
    if as_json:
        emit_json({"snapshots": [s.__dict__ for s in snaps], "current": current})
        return
    table(("Snapshot", "Disk", "Created"), [[s.name, s.disk, f"{s.created:.0f}"] for s in snaps])
    click.echo(f"current disk {current}")


@snapshot.command("revert")
@click.argument("name")
@click.argument("snap", required=False)
@pass_app
def snapshot_revert(app: AppContext, name: str, snap: str | None) -> None:
    valid((names.VM, name, "VM name"), (names.SNAPSHOT, snap, "snapshot name"))
    _, lab = bound(app)
    with reported():
        s = snapshots.revert(lab.name, name, snap)
    say(f"{name} reverted to snapshot {s.name}")


def create_with_disk(app: AppContext, name: str, host: str, memory: str, dirty_rate: str,
                     seed: int, disk: str, disk_data: str, datastore: str) -> None:
    """`vm create --disk`: the files first, then boot from them (files removed if it fails)."""
    with reported():  # every size within its maximum before a byte is written
        disk_bytes = parse_size(disk, what="--disk", minimum=1 << 20, maximum=MAX_DISK)
        data_bytes = parse_size(disk_data, what="--disk-data", maximum=MAX_DISK_DATA)
        memory_bytes = parse_size(memory, what="--memory", minimum=PAGE_SIZE,
                                  maximum=MAX_MEMORY)
        rate_bytes = parse_rate(dirty_rate, what="--dirty-rate", minimum=0)
    dc, lab = bound(app)
    with reported():
        p = files.create(dc, lab.name, name, host, disk=disk_bytes, memory=memory_bytes,
                         dirty_rate=rate_bytes, seed=seed, datastore=datastore,
                         disk_data=data_bytes)
        try:
            rec = files.power_on(dc, lab.name, name)
        except BaseException:
            files.delete(lab.name, name)
            raise
    say(f"VM {rec.name} runs on {rec.host} (pid {rec.pid}, {human_bytes(rec.memory)}), "
        f"disk {human_bytes(disk_bytes)} on [{p.datastore}]", style="green")


def vmotion_with_datastore(app: AppContext, name: str, target: str, datastore: str,
                           as_json: bool, **options: Any) -> None:
    """`vmotion --datastore`: disks over NFC, then memory over vMotion (live.vmotion)."""
    with TransferBar(f"disks of {name}", not as_json) as bar:
        done = in_controller(app, "vmotion", {**task_params(name, target, options),
                                              "datastore": datastore}, copy_events(bar))
        if done is None:  # a lab without a controller: this process moves the VM
            from ..provision import live

            dc, lab = bound(app)
            with reported():
                done = live.vmotion(dc, lab, name, target, datastore=datastore,
                                    progress=bar.update, **options).to_dict()
    if as_json:
        emit_json(done)
    else:
        print_move(done)
        if done.get("vmotion") is not None:
            from ..vmotion.report import MigrationReport

            print_report(MigrationReport.from_dict(done["vmotion"]))
    if not done["completed"]:
        sys.exit(EXIT_ABORTED)
