"""`esxcli network ip netstack add|remove|list|get|set`: TCP/IP stack instances."""

from __future__ import annotations

from typing import Literal

import click

from ...model import DEFAULT_STACK, Netstack
from ...ops import netstack as ops
from .common import BOOL, Esx, pass_esx
from .formatting import Record, json_option, show_blocks

STATE_RUNNING = 4660  # what ESXi prints as the State of an instantiated stack


@click.group()
def netstack() -> None:
    """TCP/IP stack (netstack) instances."""


def stack_option(f: click.decorators.FC) -> click.decorators.FC:
    return click.option("-N", "--netstack", "netstack", required=True,
                        help="The netstack instance (key).")(f)


@netstack.command("add")
@stack_option
@pass_esx
def add(esx: Esx, netstack: str) -> None:
    """Add a netstack instance (custom, or vmotion / vSphereProvisioning)."""
    esx.run(ops.add, name=netstack)


@netstack.command("remove")
@stack_option
@pass_esx
def remove(esx: Esx, netstack: str) -> None:
    """Remove a netstack instance that has no adapters."""
    esx.run(ops.remove, name=netstack)


def _summary(name: str) -> Record:
    return {"Key": name, "Name": name, "State": STATE_RUNNING}


def _details(name: str, stack: Netstack) -> Record:
    return {
        **_summary(name),
        "Registered Instance": True,
        "Max Connections": stack.max_connections,
        "Current Max Connections": stack.max_connections,
        "Congestion Control Algorithm": stack.congestion_control,
        "IPv6 Enabled": stack.ipv6_enabled,
        "Current IPv6 Enabled": stack.ipv6_enabled,
    }


def _ordered(names: list[str]) -> list[str]:
    return sorted(names, key=lambda n: (n != DEFAULT_STACK, n.lower()))


@netstack.command("list")
@json_option
@pass_esx
def list_(esx: Esx, as_json: bool) -> None:
    """List the netstack instances of the host."""
    h = esx.read()
    show_blocks([_summary(n) for n in _ordered(list(h.netstacks))], as_json, title="Key",
                type_name="NetstackInstance")


@netstack.command("get")
@stack_option
@json_option
@pass_esx
def get(esx: Esx, netstack: str, as_json: bool) -> None:
    """Show the settings of one netstack instance."""
    show_blocks([_details(netstack, esx.netstack(netstack))], as_json, title="Key",
                type_name="NetstackInstance", single=True)


@netstack.command("set")
@stack_option
@click.option("-c", "--ccalgo", "--congestion-control", "congestion_control",
              type=click.Choice(["newreno", "cubic"]), help="TCP congestion control algorithm.")
@click.option("-m", "--maxconn", "--max-connections", "max_connections", type=int,
              help="Max connections (takes effect at the stack's next start).")
@click.option("-i", "--ipv6enabled", "--ipv6-enabled", "ipv6_enabled", type=BOOL,
              help="Enable or disable IPv6 on the stack.")
@pass_esx
def set_(esx: Esx, netstack: str, congestion_control: str | None,
         max_connections: int | None, ipv6_enabled: bool | None) -> None:
    """Change congestion control, max connections or IPv6 of a netstack instance."""
    cc: Literal["newreno", "cubic"] | None = (
        None if congestion_control is None
        else "cubic" if congestion_control == "cubic" else "newreno")
    esx.run(ops.set_, name=netstack, congestion_control=cc, max_connections=max_connections,
            ipv6_enabled=ipv6_enabled)
