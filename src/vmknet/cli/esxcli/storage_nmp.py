"""`esxcli storage nmp device|path list|set` and `nmp psp roundrobin|fixed deviceconfig ...`.

The PSP of each device is kept in the inventory (`hosts.<h>.storage.nmp`) and
applied by vmknet's initiator when it does I/O (vmknet.storage.nmp). A list
reads the last rescan and tests each path live, as `storage core path list`
does. "Working Paths" is what a freshly opened device would use now: every
live path for RR, the preferred one (while live) for FIXED, the first live
one for MRU; a running I/O's MRU may be on another (it stays where it went).
"""

from __future__ import annotations

from typing import get_args

import click

from ...errors import NotFound
from ...model import Datacenter, NmpDevice
from ...model.storage import Psp
from ...ops import storage as ops
from ...storage import nmp, scan
from ...storage.paths import StoragePath, devices
from ...storage.psp import Selector
from .common import Esx, pass_esx
from .errors import esxcli_reported
from .formatting import Record, json_option, show_blocks
from .storage_core import _display_name, _lab, _path_record

SATP = "VMW_SATP_DEFAULT_AA"  # ESXi's SATP for an active-active array it has no rule for


@click.group("nmp")
def nmp_group() -> None:
    """Native multipathing: devices, their paths and path selection policies."""


def _live(esx: Esx) -> tuple[Datacenter, list[tuple[StoragePath, str]]]:
    lab = _lab(esx)
    dc = esx.datacenter()
    sw = dc.host(esx.host).storage.iscsi
    if sw is None:
        return dc, []
    with esxcli_reported():
        return dc, scan.path_states(dc, lab.name, esx.host, sw.name)


def _selector(config: NmpDevice, device_paths: list[StoragePath]) -> Selector:
    names = [p.runtime_name for p in device_paths]
    preferred = names.index(config.preferred) if config.preferred in names else 0
    return Selector(config.psp, len(names), config.iops, preferred)


def _psp_config(config: NmpDevice, device_paths: list[StoragePath], working: list[str]
                ) -> str:
    """ESXi's "Path Selection Policy Device Config" text for the policy."""
    current = working[0] if working else ""
    if config.psp == "VMW_PSP_RR":
        return f"{{policy=iops,iops={config.iops},bytes=10485760,useANO=0; " \
               f"lastPathIndex=0: NumIOsPending=0,numBytesPending=0}}"
    if config.psp == "VMW_PSP_FIXED":
        preferred = config.preferred or (device_paths[0].runtime_name if device_paths else "")
        return f"{{preferred={preferred};current={current}}}"
    return f"Current Path={current}"


def _device_records(dc: Datacenter, host: str, live: list[tuple[StoragePath, str]]
                    ) -> list[Record]:
    rows: list[Record] = []
    for d in devices([p for p, _ in live]):
        pairs = [(p, s) for p, s in live if p.device == d.id]
        config = nmp.config(dc, host, d.id)
        sel = _selector(config, [p for p, _ in pairs])
        working = [pairs[i][0].runtime_name for i in sel.working([s == "active"
                                                                  for _, s in pairs])]
        rows.append({
            "Device": d.id,
            "Device Display Name": _display_name(d.id),
            "Storage Array Type": SATP,
            "Storage Array Type Device Config": "SATP VMW_SATP_DEFAULT_AA does not support "
                                                "device configuration.",
            "Path Selection Policy": config.psp,
            "Path Selection Policy Device Config": _psp_config(config, [p for p, _ in pairs],
                                                               working),
            "Path Selection Policy Device Custom Config": "",
            "Working Paths": working,
            "Is USB": False,
        })
    return rows


@nmp_group.group("device")
def nmp_device() -> None:
    """Devices claimed by NMP and their path selection policy."""


@nmp_device.command("list")
@click.option("-d", "--device", "device", help="Only this device.")
@json_option
@pass_esx
def device_list(esx: Esx, device: str | None, as_json: bool) -> None:
    """List the NMP devices: SATP, PSP and the paths I/O uses now (tested live)."""
    dc, live = _live(esx)
    rows = [r for r in _device_records(dc, esx.host, live) if device in (None, r["Device"])]
    show_blocks(rows, as_json, title=_title, type_name="NMPDevice")


def _title(row: Record) -> str:
    return str(row.pop("Device"))


def device_option(f: click.decorators.FC) -> click.decorators.FC:
    return click.option("-d", "--device", "device", required=True,
                        help="The device (naa....).")(f)


@nmp_device.command("set")
@device_option
@click.option("-P", "--psp", "psp", type=click.Choice(get_args(Psp)),
              help="The path selection policy.")
@click.option("-E", "--default", "default", is_flag=True,
              help="Back to the SATP's default PSP.")
@pass_esx
def device_set(esx: Esx, device: str, psp: Psp | None, default: bool) -> None:
    """Set a device's path selection policy."""
    if (psp is None) == (not default):
        raise click.UsageError("give --psp or --default")
    _require(esx, device)
    esx.run(ops.nmp_device_set, device=device, psp=psp, default=default)


def _require(esx: Esx, device: str) -> list[StoragePath]:
    lab = _lab(esx)
    dc = esx.datacenter()
    found = nmp.device_paths(lab.name, dc, esx.host, device)
    if not found:
        with esxcli_reported():
            raise NotFound(f"Unknown device {device}: rescan the adapter, then see "
                               "'esxcli storage nmp device list'", device=device)
    return found


@nmp_group.group("path")
def nmp_path() -> None:
    """Paths of NMP devices with their group state."""


@nmp_path.command("list")
@click.option("-d", "--device", "device", help="Only the paths to this device.")
@click.option("-p", "--path", "path", help="Only this path (runtime name).")
@json_option
@pass_esx
def path_list(esx: Esx, device: str | None, path: str | None, as_json: bool) -> None:
    """List each path with its group state (active or dead, tested live)."""
    dc, live = _live(esx)
    working = {str(r["Device"]): r["Working Paths"]
               for r in _device_records(dc, esx.host, live)}
    rows: list[Record] = []
    for p, state in live:
        if device not in (None, p.device) or path not in (None, p.runtime_name):
            continue
        config = nmp.config(dc, esx.host, p.device)
        used = working.get(p.device) or []
        current = "yes" if isinstance(used, list) and p.runtime_name in used else "no"
        rank = "; preferred: yes" if config.psp == "VMW_PSP_FIXED" and p.runtime_name == (
            config.preferred or next(q.runtime_name for q, _ in live if q.device == p.device)
        ) else ""
        core = _path_record(esx.host, p, state)
        rows.append({"Path": str(core["UID"]), "Runtime Name": p.runtime_name,
                     "Device": p.device, "Device Display Name": _display_name(p.device),
                     "Group State": state, "Array Priority": 0,
                     "Storage Array Type Path Config": "SATP VMW_SATP_DEFAULT_AA does not "
                                                       "support path configuration.",
                     "Path Selection Policy Path Config": f"{{current: {current}{rank}}}"})
    show_blocks(rows, as_json, title=lambda r: str(r.pop("Path")), type_name="NMPPath")


@nmp_group.group("psp")
def psp_group() -> None:
    """Path selection policy plug-ins."""


@psp_group.group("roundrobin")
def roundrobin() -> None:
    """VMW_PSP_RR."""


@roundrobin.group("deviceconfig")
def rr_deviceconfig() -> None:
    """Round robin settings of a device."""


@rr_deviceconfig.command("set")
@device_option
@click.option("-t", "--type", "kind", type=click.Choice(["default", "iops"]), required=True,
              help="When to switch paths: after --iops I/Os, or ESXi's default (1000 I/Os).")
@click.option("-I", "--iops", "iops", type=click.IntRange(1, 2**31 - 1),
              help="I/Os on a path before the next one.")
@pass_esx
def rr_set(esx: Esx, device: str, kind: str, iops: int | None) -> None:
    """Set how often round robin switches paths (bytes and latency are not modelled)."""
    if kind == "iops" and iops is None:
        raise click.UsageError("--type iops needs --iops N")
    _require(esx, device)
    esx.run(ops.nmp_roundrobin_set, device=device,
            iops=iops if kind == "iops" and iops is not None else NmpDevice().iops)


@rr_deviceconfig.command("get")
@device_option
@json_option
@pass_esx
def rr_get(esx: Esx, device: str, as_json: bool) -> None:
    """Show a device's round robin settings."""
    _require(esx, device)
    config = nmp.config(esx.datacenter(), esx.host, device)
    rows: list[Record] = [{"Byte Limit": 10485760, "Device": device, "IOOperation Limit":
                           config.iops, "Limit Type": "Iops", "Use Active Unoptimized Paths":
                           False}]
    show_blocks(rows, as_json, title=None, type_name="RoundRobinDeviceConfig", single=True)


@psp_group.group("fixed")
def fixed() -> None:
    """VMW_PSP_FIXED."""


@fixed.group("deviceconfig")
def fixed_deviceconfig() -> None:
    """Fixed settings of a device."""


@fixed_deviceconfig.command("set")
@device_option
@click.option("-p", "--path", "path", help="The preferred path (runtime name).")
@click.option("-E", "--default", "default", is_flag=True, help="No preferred path.")
@pass_esx
def fixed_set(esx: Esx, device: str, path: str | None, default: bool) -> None:
    """Set a device's preferred path."""
    if (path is None) == (not default):
        raise click.UsageError("give --path or --default")
    found = _require(esx, device)
    if path is not None and path not in {p.runtime_name for p in found}:
        with esxcli_reported():
            raise NotFound(f"Path {path} is not a path of {device}", path=path)
    esx.run(ops.nmp_fixed_set, device=device, path=path)

