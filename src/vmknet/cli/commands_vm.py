"""`vmknet vm create|list|show|info|destroy|host-caps` and `vmknet vmotion`: VMs of the bound lab.

    vmknet vm create web01 -H esx01 --memory 1GiB --dirty-rate 50MB/s
    vmknet vm create db01 -H esx01 --disk /vmfs/devices/disks/naa.6...      # a LUN, raw
    vmknet vm create web02 -H esx01 --disk '[nfs01]' --disk-size 1GiB       # a file on NFS
    vmknet vm list
    vmknet vm info db01
    vmknet vmotion web01 --to esx02 [--max-downtime 100] [--encryption required] [--json]
"""

from __future__ import annotations

import sys
from typing import Any

import click

from ..errors import VmknetError
from ..model import names
from ..vm import manage, registry
from ..vm.disk import DiskSpec
from ..vm.units import MAX_DISK, MAX_MEMORY, PAGE_SIZE, human_bytes, parse_rate, parse_size
from .commands_provision import create_with_disk, vmotion_with_datastore
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

ENCRYPTION_MODES = ("disabled", "opportunistic", "required")  # = vmotion.crypto.MODES (tested)


@vm.command("create")
@click.argument("name")
@click.option("-H", "--host", "host", required=True, metavar="HOST", help="Host to run it on.")
@click.option("--memory", default="256MiB", show_default=True, help="Guest memory size.")
@click.option("--dirty-rate", "dirty_rate", default="50MB/s", show_default=True,
              help="Bytes per second the workload writes (hot set, zero and repeated pages).")
@click.option("--seed", type=click.IntRange(0, 2**32 - 1), default=1, show_default=True,
              help="Workload random seed.")
@click.option("--disk", default=None, metavar="SIZE|'[DS] PATH'|DEVFS",
              help="SIZE: VM files on a local datastore, a sparse disk copied over NFC "
                   "(e.g. 8GiB). '[DS] DIR/FILE.vmdk' (or '[DS]'): a disk the VM opens on "
                   "datastore DS, e.g. NFS; /vmfs/devices/disks/naa....: an iSCSI LUN, raw.")
@click.option("--disk-size", "disk_size", default=None, metavar="SIZE",
              help="Size of a '[DS] PATH' disk (a LUN: its size unless smaller).")
@click.option("--disk-rate", "disk_rate", type=click.IntRange(0, 100_000), default=20,
              show_default=True, help="The guest's disk writes per second (each read back).")
@click.option("--disk-data", "disk_data", default="4MiB", show_default=True,
              help="Guest data written into the new disk (the rest is a hole).")
@click.option("--datastore", default="ds1", show_default=True, help="Datastore of --disk.")
@pass_app
def create_command(app: AppContext, name: str, host: str, memory: str, dirty_rate: str,
                   seed: int, disk: str | None, disk_size: str | None, disk_rate: int,
                   disk_data: str, datastore: str) -> None:
    """Boot VM NAME on HOST of the bound lab (with --disk: from files on a datastore)."""
    valid((names.VM, name, "VM name"), (names.HOST, host, "--host"),
          (names.DATASTORE, datastore, "--datastore"))
    with reported():
        memory_bytes = parse_size(memory, what="--memory", minimum=PAGE_SIZE,
                                  maximum=MAX_MEMORY)
        rate_bytes = parse_rate(dirty_rate, what="--dirty-rate", minimum=0)
    if disk is not None and disk.lstrip()[:1] in ("[", "/"):
        _create_attached(app, name, host, memory_bytes, rate_bytes, seed, disk, disk_size,
                         disk_rate, datastore)
        return
    if disk_size is not None:
        raise click.UsageError("--disk-size goes with --disk '[DS] PATH' or a LUN")
    if disk is not None:
        create_with_disk(app, name, host, memory, dirty_rate, seed, disk, disk_data, datastore)
        return
    dc, lab = bound(app)
    with reported():
        rec = manage.create(dc, lab.name, name, host, memory_bytes, rate_bytes, seed)
    say(f"VM {rec.name} runs on {rec.host} (pid {rec.pid}, {human_bytes(rec.memory)}, "
        f"dirty rate {rec.dirty_rate / 1e6:.0f} MB/s)", style="green")


def _create_attached(app: AppContext, name: str, host: str, memory: int, dirty_rate: int,
                     seed: int, disk: str, disk_size: str | None, disk_rate: int,
                     datastore: str) -> None:
    """`vm create --disk '[DS] PATH'|DEVFS`: the configuration on [datastore], the disk
    where it says (the VM process opens it: STO-5), then boot (files removed if it fails)."""
    from ..provision import files

    with reported():
        size = parse_size(disk_size, what="--disk-size", minimum=1 << 20,
                          maximum=MAX_DISK) if disk_size else 0
        spec = DiskSpec.parse(disk, size, name) if disk.startswith("[") else \
            DiskSpec.parse(disk, size)
    dc, lab = bound(app)
    with reported():
        _, spec = files.create_attached(dc, lab.name, name, host, disk=spec, memory=memory,
                                        dirty_rate=dirty_rate, seed=seed, disk_rate=disk_rate,
                                        datastore=datastore)
        try:
            rec = files.power_on(dc, lab.name, name)
        except BaseException:
            files.delete(lab.name, name)
            raise
    say(f"VM {rec.name} runs on {rec.host} (pid {rec.pid}, {human_bytes(rec.memory)}), "
        f"disk {spec.text()} ({spec.kind}, {human_bytes(spec.size)}), {disk_rate} writes/s "
        "read back", style="green")


@vm.command("list")
@click.option("--json", "as_json", is_flag=True)
@pass_app
def list_command(app: AppContext, as_json: bool) -> None:
    """VMs of the bound lab and the host each runs on."""
    _, lab = bound(app)
    rows = manage.records(lab.name)
    disks = {r.name: _disk_stats(lab.name, r.name) for r in rows if r.disk}
    if as_json:
        emit_json([r.__dict__ | {"disk_io": disks.get(r.name)} for r in rows])
        return
    table(("Name", "Host", "PID", "Memory", "Dirty Rate", "Disk", "Datastore", "Read",
           "Written", "I/O Errors"),
          [[r.name, r.host, r.pid, human_bytes(r.memory), f"{r.dirty_rate / 1e6:.0f} MB/s",
            *_disk_columns(disks.get(r.name))] for r in rows])


def _disk_stats(lab: str, name: str) -> dict[str, Any] | None:
    """The VM's disk counters from its process (None if it went away meanwhile)."""
    try:
        got = manage.status(lab, name).get("disk")
    except (VmknetError, OSError):
        return None
    return got if isinstance(got, dict) else None


def _disk_columns(d: dict[str, Any] | None) -> list[str]:
    if d is None:
        return ["-", "-", "-", "-", "-"]
    return [str(d["disk"]), f"{d['datastore']} ({d['kind']})", human_bytes(d["bytes_read"]),
            human_bytes(d["bytes_written"]), str(d["io_errors"] + d["verify_failures"])]


@vm.command("show")
@click.argument("name")
@pass_app
def show_command(app: AppContext, name: str) -> None:
    """Status of VM NAME (from its process): host, state, pages written so far."""
    vm_name(name)
    _, lab = bound(app)
    with reported():
        emit_json(manage.status(lab.name, name))


@vm.command("info")
@click.argument("name")
@pass_app
def info_command(app: AppContext, name: str) -> None:
    """VM NAME in one table: host, state, memory, and its disk (datastore, I/O, errors)."""
    vm_name(name)
    _, lab = bound(app)
    with reported():
        st = manage.status(lab.name, name)
    rows = [["Host", st["host"]], ["PID", st["pid"]], ["State", st["state"]],
            ["Memory", human_bytes(st["memory"] or 0)],
            ["Dirty Rate", f"{(st['dirty_rate'] or 0) / 1e6:.0f} MB/s"]]
    d = st.get("disk")
    if isinstance(d, dict):
        rows += [["Disk", d["disk"]], ["Datastore", f"{d['datastore']} ({d['kind']})"],
                 ["Disk Size", human_bytes(d["size"])],
                 ["Read", f"{human_bytes(d['bytes_read'])} ({d['reads']} reads)"],
                 ["Written", f"{human_bytes(d['bytes_written'])} ({d['writes']} writes)"],
                 ["I/O Errors", d["io_errors"]], ["Verify Failures", d["verify_failures"]],
                 ["Longest I/O", f"{d['max_io_ms']} ms"]]
        if d["last_error"]:
            rows.append(["Last Error", d["last_error"]])
    else:
        rows.append(["Disk", "-"])
    table(("Field", "Value"), rows)


@vm.command("destroy")
@click.argument("name")
@pass_app
def destroy_command(app: AppContext, name: str) -> None:
    """Stop VM NAME and release its memory."""
    vm_name(name)
    _, lab = bound(app)
    with reported():
        rec = manage.destroy(lab.name, name)
    say(f"VM {rec.name} destroyed on {rec.host}")


@vm.command("host-caps")
@click.option("-H", "--host", "host", required=True, metavar="HOST")
@click.option("--encryption/--no-encryption", default=True,
              help="Whether the host's migration agent can do encrypted vMotion (SEC-1).")
@pass_app
def host_caps_command(app: AppContext, host: str, encryption: bool) -> None:
    """Declare what a host's migration agent supports (an older host: --no-encryption)."""
    valid((names.HOST, host, "--host"))
    dc, lab = bound(app)
    with reported():
        dc.host(host)
    registry.set_host_encryption(lab.name, host, encryption)
    say(f"{host}: encrypted vMotion {'supported' if encryption else 'not supported'}")


@click.command("vmotion")
@click.argument("name")
@click.option("--to", "target", required=True, metavar="HOST", help="Target host.")
@click.option("--max-downtime", "max_downtime", type=click.FloatRange(1, 60000), default=100,
              show_default=True, help="Milliseconds the VM may be stunned at switchover.")
@click.option("--encryption", type=click.Choice(ENCRYPTION_MODES), default="opportunistic",
              show_default=True, help="Encrypted vMotion (SEC-1).")
@click.option("--timeout", type=click.FloatRange(1, 600), default=15, show_default=True,
              help="Seconds a stream may stall before its adapter pair is dropped.")
@click.option("--rate-limit", "rate_limit", default=None, metavar="RATE",
              help="Per-stream bandwidth cap, e.g. 100MB/s (emulates a slower network).")
@click.option("--datastore", default=None, metavar="DS",
              help="Also move the VM's files to DS on the target (disks over NFC first).")
@click.option("--json", "as_json", is_flag=True, help="The report as JSON.")
@pass_app
def vmotion_command(app: AppContext, name: str, target: str, max_downtime: float,
                    encryption: str, timeout: float, rate_limit: str | None,
                    datastore: str | None, as_json: bool) -> None:
    """Live-migrate VM NAME to another host over the vMotion adapters (pre-copy, multi-NIC)."""
    valid((names.VM, name, "VM name"), (names.HOST, target, "--to"),
          (names.DATASTORE, datastore, "--datastore"))
    limit = rate(rate_limit, "--rate-limit") if rate_limit else None
    options: dict[str, Any] = {"max_downtime": max_downtime / 1000, "encryption": encryption,
                               "timeout": timeout, "rate_limit": limit}
    if datastore is not None:
        vmotion_with_datastore(app, name, target, datastore, as_json, **options)
        return
    show = _Progress(enabled=not as_json)
    with show:
        done = in_controller(app, "vmotion", task_params(name, target, options), show.update)
        if done is None:  # a lab without a controller: this process migrates the VM
            from ..vmotion import migrate

            dc, lab = bound(app)
            with reported():
                done = migrate(dc, lab, name, target, progress=show.update, **options).to_dict()
    from ..vmotion.report import MigrationReport

    report = MigrationReport.from_dict(done)
    moved = _follow(app, name, target) if report.completed else None
    if as_json:
        emit_json(report.to_dict() | ({"registration": moved} if moved else {}))
    else:
        print_report(report)
        if moved:
            say(f"registration of {name} -> {moved['target']}: {moved['reason']}")
    if not report.completed:
        sys.exit(EXIT_ABORTED)


def _follow(app: AppContext, name: str, target: str) -> dict[str, Any] | None:
    """A VM on a shared datastore: its registration follows it (provision.live.follow)."""
    from ..provision import live

    dc, lab = bound(app)
    with reported():
        moved = live.follow(dc, lab.name, name, target)
    return moved.to_dict() if moved else None


class _Progress:
    """A rich progress line on a terminal; one line per round otherwise."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.live: Any = None

    def __enter__(self) -> _Progress:
        if self.enabled and is_terminal():
            from rich.progress import Progress, SpinnerColumn, TextColumn

            self.live = Progress(SpinnerColumn(), TextColumn("{task.description}"),
                                 transient=True)
            self.live.start()
            self.task = self.live.add_task("connecting")
        return self

    def __exit__(self, *exc: object) -> None:
        if self.live is not None:
            self.live.stop()

    def update(self, event: dict[str, Any]) -> None:
        if not self.enabled:
            return
        pairs = "  ".join(f"{p['source_vmk']}->{p['target_vmk']} {p['gbps']:.2f} Gbit/s"
                          for p in event.get("pairs", []))
        kind = event.get("event")
        phase = "stunned" if event.get("stunned") or kind == "phase" else "pre-copy"
        line = (f"{phase} round {event.get('round')}  dirty pages left "
                f"{event.get('dirty_left', '-')}  {pairs}")
        if self.live is not None:
            self.live.update(self.task, description=line)
        elif kind in ("round", "phase"):
            click.echo(line)


COMMANDS = (vm, vmotion_command)
