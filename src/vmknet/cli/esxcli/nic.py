"""`esxcli network nic list|get|up|down|set`: the host's physical NICs (vmnicN)."""

from __future__ import annotations

import click

from ...model import Host, derived_mac
from ...ops import lookup
from ...ops import nic as ops
from . import kernel
from .common import MTU, Esx, natural_key, pass_esx
from .formatting import Record, json_option, show_blocks, show_table

NIC_COLUMNS = ("Name", "PCI Device", "Driver", "Admin Status", "Link Status", "Speed", "Duplex",
               "MAC Address", "MTU", "Description")
DESCRIPTION = "vmknet Virtual Ethernet Controller"


def nic_option(f: click.decorators.FC) -> click.decorators.FC:
    return click.option("-n", "--nic-name", "nic_name", required=True,
                        help="The physical NIC (vmnicN).")(f)


@click.group()
def nic() -> None:
    """Physical NICs."""


def _pci(h: Host, name: str) -> str:
    """A PCI address per NIC, derived from its position (0000:0b:00.0, 0000:13:00.0, ...)."""
    index = sorted(h.nics, key=natural_key).index(name)
    return f"0000:{0x0B + 8 * index:02x}:00.0"


def nic_record(host: str, h: Host, name: str) -> Record:
    pnic = h.nics[name]
    return {
        "Name": name,
        "PCI Device": _pci(h, name),
        "Driver": pnic.driver,
        "Admin Status": "Up" if pnic.link_up else "Down",
        "Link Status": "Up" if pnic.link_up else "Down",
        "Speed": pnic.speed if pnic.link_up else 0,
        "Duplex": "Full" if pnic.link_up else "Half",
        "MAC Address": pnic.mac or derived_mac(host, name),
        "MTU": pnic.mtu,
        "Description": DESCRIPTION,
    }


@nic.command("list")
@json_option
@pass_esx
def list_(esx: Esx, as_json: bool) -> None:
    """List the physical NICs."""
    h = esx.read()
    rows = [nic_record(esx.host, h, n) for n in sorted(h.nics, key=natural_key)]
    for row, link in kernel.nic_link_overrides(esx, rows):  # the kernel's, when a lab is up
        row["Link Status"] = "Up" if link else "Down"
    show_table(NIC_COLUMNS, rows, as_json, type_name="Nic")


@nic.command("get")
@nic_option
@json_option
@pass_esx
def get(esx: Esx, nic_name: str, as_json: bool) -> None:
    """Show the details of one physical NIC."""
    esx.find(lookup.nic, nic_name)
    h = esx.read()
    row = nic_record(esx.host, h, nic_name)
    record: Record = {
        "Advertised Auto Negotiation": True,
        "Auto Negotiation": True,
        "Cable Type": "Twisted Pair",
        "Bus Info": row["PCI Device"],
        "Driver": row["Driver"],
        "Link Detected": h.nics[nic_name].link_up,
        "Link Status": row["Link Status"],
        "Name": nic_name,
        "Speed": row["Speed"],
        "Duplex": row["Duplex"],
        "MTU": row["MTU"],
        "Virtual Address": row["MAC Address"],
    }
    show_blocks([record], as_json, title=None, type_name="NicInfo", single=True)


@nic.command("up")
@nic_option
@pass_esx
def up(esx: Esx, nic_name: str) -> None:
    """Bring a physical NIC up."""
    esx.run(ops.set_link, name=nic_name, up=True)


@nic.command("down")
@nic_option
@pass_esx
def down(esx: Esx, nic_name: str) -> None:
    """Bring a physical NIC down (its link is lost: teaming fails over)."""
    esx.run(ops.set_link, name=nic_name, up=False)


@nic.command("set")
@nic_option
@click.option("-S", "--speed", "speed", type=click.IntRange(min=10), help="Speed in Mbit/s.")
@click.option("-m", "--mtu", "mtu", type=MTU, help="MTU (1280-9000).")
@pass_esx
def set_(esx: Esx, nic_name: str, speed: int | None, mtu: int | None) -> None:
    """Change the speed or MTU of a physical NIC."""
    esx.run(ops.set_, name=nic_name, speed=speed, mtu=mtu)
