"""`esxcli storage core adapter rescan | path list | device list`: the host's iSCSI storage, live.

These read the running lab: a rescan discovers through each bound adapter
with libiscsi (vmknet.storage.scan), a path list logs in through each path's
adapter to tell active from dead. Field names are ESXi's (docs/storage.md
says which are published and which come from ESXi's printed output).
"""

from __future__ import annotations

import click

from ...lab import Lab, require_lab
from ...storage import scan
from ...storage.paths import Device, StoragePath, devices, initiator_name, paths
from .common import Esx, pass_esx
from .errors import esxcli_reported
from .formatting import Record, json_option, show_blocks, show_table

ADAPTER_COLUMNS = ("HBA Name", "Driver", "Link State", "UID", "Capabilities", "Description")
MB = 1 << 20
MAX_IO_SIZE = 131072  # bytes, ESXi's default for software iSCSI paths


@click.group("storage")
def storage() -> None:
    """Storage: devices, paths and adapters (core)."""


@storage.group()
def core() -> None:
    """The pluggable storage architecture: adapters, devices and their paths."""


@core.group("adapter")
def core_adapter() -> None:
    """Storage adapters (vmhbaN)."""


def _lab(esx: Esx) -> Lab:
    with esxcli_reported():
        return require_lab(esx.app.inventory)


def _adapters(esx: Esx, adapter: str | None) -> list[str]:
    """The software iSCSI adapter, checked against -A when given."""
    sw = esx.read().storage.iscsi
    with esxcli_reported():
        if adapter is not None:
            return [scan.software_adapter(esx.datacenter(), esx.host, adapter).name]
    return [] if sw is None else [sw.name]


@core_adapter.command("list")
@json_option
@pass_esx
def adapter_list(esx: Esx, as_json: bool) -> None:
    """List the storage adapters (the software iSCSI adapter when it is enabled)."""
    rows: list[Record] = [{"HBA Name": name, "Driver": "iscsi_vmk", "Link State": "online",
                           "UID": initiator_name(esx.host), "Capabilities": "Second Level Lun ID",
                           "Description": "iSCSI Software Adapter"}
                          for name in _adapters(esx, None)]
    show_table(ADAPTER_COLUMNS, rows, as_json, type_name="Adapter")


@core_adapter.command("rescan")
@click.option("-A", "--adapter", "adapter", help="The adapter to rescan (vmhbaN).")
@click.option("-a", "--all", "every", is_flag=True, help="Rescan every adapter.")
@pass_esx
def adapter_rescan(esx: Esx, adapter: str | None, every: bool) -> None:
    """Discover targets and LUNs through every bound adapter (SendTargets, libiscsi)."""
    if adapter is None and not every:
        raise click.UsageError("give -A vmhbaN or --all")
    names = _adapters(esx, adapter)  # an unknown adapter is refused before the lab is asked
    lab = _lab(esx)
    dc = esx.datacenter()
    for name in names:
        with esxcli_reported():
            scans = scan.rescan(dc, lab.name, esx.host, name)
        for failed in (s for s in scans if s.error is not None):
            click.echo(f"{name}: C{failed.channel} ({failed.vmk or 'unbound'}) -> "
                       f"{failed.sendtarget}: {failed.error}", err=True)


@core.group("path")
def core_path() -> None:
    """Paths from adapters to devices."""


def _path_record(host: str, p: StoragePath, state: str) -> Record:
    initiator = initiator_name(host)
    target_id = f"{p.session},{p.iqn},t,{p.tpgt}"
    return {
        "UID": f"{initiator}-{target_id}-{p.device}",
        "Runtime Name": p.runtime_name,
        "Device": p.device,
        "Device Display Name": _display_name(p.device),
        "Adapter": p.adapter,
        "Channel": p.channel,
        "Target": p.target,
        "LUN": p.lun,
        "Plugin": "NMP",
        "State": state,
        "Transport": "iscsi",
        "Adapter Identifier": initiator,
        "Target Identifier": target_id,
        "Adapter Transport Details": initiator,
        "Target Transport Details": f"IQN={p.iqn} Alias= Session={p.session} "
                                    f"PortalTag={p.tpgt}",
        "Maximum IO Size": MAX_IO_SIZE,
        "Portal": p.portal,  # vmknet's: the address:port this path's session goes to
        "Vmknic": p.vmk or "",  # vmknet's: the bound adapter this path's bytes leave by
    }


def _display_name(device: str) -> str:
    return f"IET iSCSI Disk ({device})"


@core_path.command("list")
@click.option("-d", "--device", "device", help="Only the paths to this device.")
@click.option("-p", "--path", "path", help="Only this path (runtime name or UID).")
@json_option
@pass_esx
def path_list(esx: Esx, device: str | None, path: str | None, as_json: bool) -> None:
    """List the paths of the last rescan, each with its state now (a real login test)."""
    lab = _lab(esx)
    dc = esx.datacenter()
    rows: list[Record] = []
    for name in _adapters(esx, None):
        with esxcli_reported():
            states = scan.path_states(dc, lab.name, esx.host, name)
        for p, state in states:
            record = _path_record(esx.host, p, state)
            if device not in (None, p.device) or path not in (None, p.runtime_name,
                                                               record["UID"]):
                continue
            rows.append(record)
    show_blocks(rows, as_json, title="UID", type_name="Path")


@core.group("device")
def core_device() -> None:
    """Storage devices (LUNs)."""


def _device_record(d: Device) -> Record:
    return {
        "Device": d.id,
        "Display Name": _display_name(d.id),
        "Has Settable Display Name": True,
        "Size": d.size // MB,
        "Device Type": "Direct-Access",
        "Multipath Plugin": "NMP",
        "Devfs Path": f"/vmfs/devices/disks/{d.id}",
        "Vendor": "IET",
        "Model": "VIRTUAL-DISK",
        "Revision": "0001",
        "SCSI Level": 5,
        "Is Pseudo": False,
        "Status": "on",
        "Is RDM Capable": True,
        "Is Local": False,
        "Is Removable": False,
        "Is SSD": False,
        "Is Offline": False,
        "Is Shared Clusterwide": True,
        "Is Boot Device": False,
        "Device Max Queue Depth": 128,
        "Other UIDs": f"vml.02{d.lun:04x}{d.id.removeprefix('naa.')}",
        "Logical Block Size": d.block,  # vmknet's: from READ CAPACITY(16)
        "Paths": d.paths,  # vmknet's: paths to it through this host's adapters
    }


@core_device.command("list")
@click.option("-d", "--device", "device", help="Only this device.")
@json_option
@pass_esx
def device_list(esx: Esx, device: str | None, as_json: bool) -> None:
    """List the devices the last rescan found (one per target and LUN)."""
    lab = _lab(esx)
    found: list[StoragePath] = []
    for name in _adapters(esx, None):
        with esxcli_reported():
            found += paths(name, scan.load(lab.name, esx.host, name))
    rows = [_device_record(d) for d in devices(found) if device in (None, d.id)]
    show_blocks(rows, as_json, title=_device_title, type_name="Device")


def _device_title(row: Record) -> str:
    """ESXi titles each block by the device and does not repeat it as a field (JSON keeps it)."""
    return str(row.pop("Device"))
