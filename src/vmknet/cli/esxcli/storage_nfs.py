"""`esxcli storage nfs|nfs41 add|list|remove` and `esxcli storage filesystem list`.

A datastore is kept in the inventory (`hosts.<h>.storage.nfs`); with a lab up,
`add` first runs the mount test through the adapter that reaches the server
(ESXi refuses a mount that fails too) and `list` runs it again for
"Accessible". Both are real, with vmknet's own client (storage/nfsc): NFS 3
through the array's rpcbind, NFS 4.1 as one session trunked over every server
address (`nfs41 list` shows each connection: vmknet's column, not ESXi's).
The space the mount test reads gives `filesystem list` its Size and Free.
"""

from __future__ import annotations

import hashlib
from typing import Literal

import click

from ...errors import DataplaneError
from ...lab.binding import bound_lab
from ...model import NfsMount
from ...ops import storage as ops
from ...storage import nfs
from .common import Esx, pass_esx
from .errors import esxcli_reported
from .formatting import Record, json_option, show_table

NFS_COLUMNS = ("Volume Name", "Host", "Share", "Vmknic", "Accessible", "Mounted",
               "Connections", "Read-Only", "isPE", "Hardware Acceleration")
NFS41_COLUMNS = ("Volume Name", "Host(s)", "Share", "Vmknics", "Accessible", "Mounted",
                 "Read-Only", "Security", "isPE", "Hardware Acceleration", "Connections")
FS_COLUMNS = ("Mount Point", "Volume Name", "UUID", "Mounted", "Type", "Size", "Free")


@click.group("nfs")
def nfs_group() -> None:
    """NFS 3 datastores."""


@click.group("nfs41")
def nfs41_group() -> None:
    """NFS 4.1 datastores (one session trunked over the server's addresses)."""


@click.group("filesystem")
def filesystem_group() -> None:
    """Mounted file systems (datastores)."""


def _lab_name(esx: Esx) -> str | None:
    with esxcli_reported():
        lab = bound_lab(esx.app.inventory)
    return None if lab is None else lab.name


def _add(esx: Esx, name: str, servers: list[str], share: str,
         version: Literal["3", "4.1"]) -> None:
    lab = _lab_name(esx)
    if lab is not None:
        mount = NfsMount(version=version, servers=servers, share=share)
        why = nfs.probe(esx.datacenter(), lab, esx.host, mount).why
        if why is not None:
            with esxcli_reported():
                raise DataplaneError(f"Unable to complete Sysinfo operation: NFS mount "
                                     f"{servers[0]}:{share} failed: {why}", datastore=name)
    esx.run(ops.nfs_add, name=name, servers=servers, share=share, version=version)


def _rows(esx: Esx, version: str) -> list[tuple[str, NfsMount, nfs.Probe, list[str]]]:
    """(name, mount, its mount test, vmknics) of the host's datastores."""
    dc = esx.datacenter()
    lab = _lab_name(esx)
    out = []
    for name, mount in sorted(esx.read().storage.nfs.items()):
        if mount.version != version:
            continue
        probe = nfs.Probe("no lab is up") if lab is None else nfs.probe(dc, lab, esx.host,
                                                                          mount)
        vmks = [] if lab is None else [nfs.reach(dc, lab, esx.host, s).vmk or ""
                                       for s in mount.servers]
        out.append((name, mount, probe, vmks))
    return out


share_option = click.option("-s", "--share", "share", required=True,
                            help="The export's path on the server (/share).")
name_option = click.option("-v", "--volume-name", "name", required=True,
                           help="The datastore's name.")


@nfs_group.command("add")
@click.option("-H", "--host", "server", required=True, help="The NFS server's address.")
@share_option
@name_option
@pass_esx
def nfs_add(esx: Esx, server: str, share: str, name: str) -> None:
    """Mount an NFS 3 export as a datastore (tested through the adapter that reaches it)."""
    _add(esx, name, [server], share, "3")


@nfs_group.command("remove")
@name_option
@pass_esx
def nfs_remove(esx: Esx, name: str) -> None:
    """Unmount an NFS 3 datastore."""
    esx.run(ops.nfs_remove, name=name, version="3")


@nfs_group.command("list")
@json_option
@pass_esx
def nfs_list(esx: Esx, as_json: bool) -> None:
    """List the NFS 3 datastores, each tested live."""
    rows: list[Record] = [
        {"Volume Name": name, "Host": mount.servers[0], "Share": mount.share,
         "Vmknic": vmks[0] if vmks else "", "Accessible": probe.why is None,
         "Mounted": probe.why is None, "Connections": 1, "Read-Only": False, "isPE": False,
         "Hardware Acceleration": "Not Supported"}
        for name, mount, probe, vmks in _rows(esx, "3")]
    show_table(NFS_COLUMNS, rows, as_json, type_name="NasVolume")


@nfs41_group.command("add")
@click.option("-H", "--hosts", "servers", required=True,
              help="The server's addresses, comma-separated (one session trunked over them).")
@share_option
@name_option
@click.option("-a", "--sec", "sec", type=click.Choice(["AUTH_SYS"]), default="AUTH_SYS",
              help="Security flavour (Kerberos is not modelled).")
@pass_esx
def nfs41_add(esx: Esx, servers: str, share: str, name: str, sec: str) -> None:
    """Mount an export as an NFS 4.1 datastore (STO-2 checked; session over every address)."""
    addresses = [s.strip() for s in servers.split(",") if s.strip()]
    if not addresses:
        raise click.UsageError("give one or more server addresses with -H")
    _add(esx, name, addresses, share, "4.1")


@nfs41_group.command("remove")
@name_option
@pass_esx
def nfs41_remove(esx: Esx, name: str) -> None:
    """Unmount an NFS 4.1 datastore."""
    esx.run(ops.nfs_remove, name=name, version="4.1")


@nfs41_group.command("list")
@json_option
@pass_esx
def nfs41_list(esx: Esx, as_json: bool) -> None:
    """List the NFS 4.1 datastores, each tested live; "Connections" shows each address's."""
    rows: list[Record] = [
        {"Volume Name": name, "Host(s)": ",".join(mount.servers), "Share": mount.share,
         "Vmknics": ",".join(vmks), "Accessible": probe.why is None,
         "Mounted": probe.why is None, "Read-Only": False, "Security": "AUTH_SYS",
         "isPE": False, "Hardware Acceleration": "Not Supported",
         "Connections": "; ".join(probe.connections)}
        for name, mount, probe, vmks in _rows(esx, "4.1")]
    show_table(NFS41_COLUMNS, rows, as_json, type_name="NasVolume")


def volume_uuid(host_and_share: str) -> str:
    """ESXi's NFS volume UUID form (two groups of 8 hex digits), the same on every host."""
    digest = hashlib.sha256(host_and_share.encode()).hexdigest()
    return f"{digest[:8]}-{digest[8:16]}"


def _space(probe: nfs.Probe) -> tuple[int, int]:
    """(size, free) bytes of the file system behind the export, as the server says
    (FSSTAT, or NFS 4.1's space attributes); (0, 0) when the mount test failed."""
    return (probe.space.total, probe.space.avail) if probe.space is not None else (0, 0)


@filesystem_group.command("list")
@json_option
@pass_esx
def filesystem_list(esx: Esx, as_json: bool) -> None:
    """List the datastores: NFS ones (vmknet formats no VMFS on iSCSI LUNs)."""
    rows: list[Record] = []
    for version, kind in (("3", "NFS"), ("4.1", "NFS41")):
        for name, mount, probe, _ in _rows(esx, version):
            uuid = volume_uuid(f"{','.join(mount.servers)}:{mount.share}")
            size, free = _space(probe)
            rows.append({"Mount Point": f"/vmfs/volumes/{uuid}", "Volume Name": name,
                         "UUID": uuid, "Mounted": probe.why is None, "Type": kind,
                         "Size": size, "Free": free})
    show_table(FS_COLUMNS, rows, as_json, type_name="FilesystemVolume")
