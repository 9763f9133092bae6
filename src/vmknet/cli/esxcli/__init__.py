"""`vmknet esxcli -H HOST <words>`: ESXi's esxcli namespaces over the inventory (SPEC section 11).

    esxcli network ip interface|netstack|route|dns|connection|neighbor ...
    esxcli network vswitch standard [uplink|portgroup|policy] ...
    esxcli network nic ...
    esxcli iscsi software|adapter|networkportal ...
    esxcli vsan network ...
    esxcli storage core adapter rescan | path list | device list
    esxcli storage nmp device|path list, device set, psp roundrobin|fixed deviceconfig
    esxcli storage nfs|nfs41 add|list|remove, storage filesystem list

Every command parses ESXi's options (long and short names), runs one
operation of `vmknet.ops` all or nothing, and prints ESXi's columns; every
list/get also takes `esxcli --formatter=csv|keyvalue|xml|json` (before the
namespace words, as on ESXi) and `--json` after them.
"""

from __future__ import annotations

import sys

import click

from ...errors import InvalidArgument, exit_code
from .addresses import ipv4, ipv6
from .common import HOST_KEY
from .formatting import FORMATTER_KEY, FORMATTERS
from .interface import interface
from .kernel import connection, neighbor, nic_stats
from .netstack import netstack
from .nic import nic
from .route_dns import dns, route
from .storage import iscsi, vsan
from .storage_core import storage
from .storage_nfs import filesystem_group, nfs41_group, nfs_group
from .storage_nmp import nmp_group
from .vsan_cluster import cluster as vsan_cluster
from .vswitch import vswitch

__all__ = ["esxcli"]


def _formatter(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """An unknown formatter is one line with a code, not click's usage block."""
    if value is None or value in FORMATTERS:
        return value
    err = InvalidArgument(f"Unknown formatter '{value}': use {', '.join(FORMATTERS)}",
                          formatter=value)
    click.echo(f"Error [{err.code}]: {err.message}", err=True)
    sys.exit(exit_code(err))


@click.group()
@click.option("-H", "--host", "host", required=True, metavar="HOST",
              help="The host to run the command against (as `esxcli` on that host).")
@click.option("--formatter", metavar="|".join(FORMATTERS), callback=_formatter,
              is_eager=True, help="Print every list/get as csv, keyvalue or xml as ESXi "
              "does, or as JSON (as `--json` on the command does).")
@click.pass_context
def esxcli(ctx: click.Context, host: str, formatter: str | None) -> None:
    """esxcli, as on an ESXi host: network, iscsi and vsan namespaces."""
    ctx.meta[HOST_KEY] = host
    ctx.meta[FORMATTER_KEY] = formatter


@click.group()
def network() -> None:
    """Operations on the host's network: ip, vswitch, nic."""


@click.group()
def ip() -> None:
    """VMkernel IP: interfaces, netstacks, routes, DNS."""


interface.add_command(ipv4)
interface.add_command(ipv6)
nic.add_command(nic_stats)
for _command in (interface, netstack, route, dns, connection, neighbor):
    ip.add_command(_command)
for _command in (ip, vswitch, nic):
    network.add_command(_command)
for _command in (nmp_group, nfs_group, nfs41_group, filesystem_group):
    storage.add_command(_command)
vsan.add_command(vsan_cluster)
for _command in (network, iscsi, vsan, storage):
    esxcli.add_command(_command)
