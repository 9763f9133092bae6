"""`esxcli network vswitch standard [portgroup] policy failover set|get`: teaming and failover."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

from ...errors import NotFound
from ...model import Host, LoadBalancing, StandardSwitch, TeamingPolicy
from ...ops import lookup
from ...ops import vswitch as ops
from .common import BOOL, Esx, pass_esx, split_list
from .formatting import Record, json_option, show_blocks

F = TypeVar("F", bound=Callable[..., Any])

# esxcli's names for the load balancing policies in `get` output
LOAD_BALANCING_NAMES: dict[str, str] = {"portid": "srcport", "mac": "srcmac",
                                        "iphash": "iphash", "explicit": "explicit",
                                        "loadbased": "loadbased"}
_LB: dict[str, LoadBalancing] = {"portid": "portid", "mac": "mac", "iphash": "iphash",
                                 "explicit": "explicit"}


def _uplinks(ctx: click.Context, param: click.Parameter, value: str | None) -> list[str] | None:
    return None if value is None else split_list(value)


def failover_options(f: F) -> F:
    """The options `set` shares between a switch and a port group."""
    for option in reversed([
        click.option("-a", "--active-uplinks", "active", callback=_uplinks,
                     help="Active uplinks, comma separated (vmnic0,vmnic1)."),
        click.option("-s", "--standby-uplinks", "standby", callback=_uplinks,
                     help="Standby uplinks, comma separated ('' for none)."),
        click.option("-l", "--load-balancing", "load_balancing",
                     type=click.Choice(list(_LB)), help="Load balancing policy."),
        click.option("-b", "--failback", "failback", type=BOOL, help="Fail back to a "
                     "recovered active uplink."),
        click.option("-n", "--notify-switches", "notify_switches", type=BOOL,
                     help="Notify physical switches on failover."),
        click.option("-f", "--failure-detection", "failure_detection",
                     type=click.Choice(["link"]), help="Network failure detection (link)."),
    ]):
        f = option(f)
    return f


def policy_record(team: TeamingPolicy, uplinks: list[str]) -> Record:
    return {
        "Load Balancing": LOAD_BALANCING_NAMES[team.load_balancing],
        "Network Failure Detection": "link",
        "Notify Switches": team.notify_switches,
        "Failback": team.failback,
        "Active Adapters": list(team.active),
        "Standby Adapters": list(team.standby),
        "Unused Adapters": team.unused(uplinks),
    }


@click.group("failover")
def vswitch_policy() -> None:
    """Teaming and failover policy of a standard switch."""


@vswitch_policy.command("set")
@click.option("-v", "--vswitch-name", "vswitch", required=True, help="The standard switch.")
@failover_options
@pass_esx
def vswitch_set(esx: Esx, vswitch: str, active: list[str] | None, standby: list[str] | None,
                load_balancing: str | None, failback: bool | None,
                notify_switches: bool | None, failure_detection: str | None) -> None:
    """Set the failover order and teaming of a standard switch."""
    esx.run(ops.failover_set, vswitch=vswitch, active=active, standby=standby,
            load_balancing=_LB[load_balancing] if load_balancing else None,
            failback=failback, notify_switches=notify_switches)


@vswitch_policy.command("get")
@click.option("-v", "--vswitch-name", "vswitch", required=True, help="The standard switch.")
@json_option
@pass_esx
def vswitch_get(esx: Esx, vswitch: str, as_json: bool) -> None:
    """Show the failover policy of a standard switch."""
    vs = esx.find(lookup.vswitch, vswitch)
    show_blocks([policy_record(vs.teaming, vs.uplinks)], as_json, title=None,
                type_name="FailoverPolicy", single=True)


def _switch_of(h: Host, portgroup: str) -> StandardSwitch:
    for vs in h.vswitches.values():
        if portgroup in vs.portgroups:
            return vs
    raise NotFound(f"Portgroup {portgroup} not found")


@click.group("failover")
def portgroup_policy() -> None:
    """Teaming and failover policy of a port group (an override of its switch's)."""


@portgroup_policy.command("set")
@click.option("-p", "--portgroup-name", "portgroup", required=True, help="The port group.")
@failover_options
@click.option("-u", "--use-vswitch", "use_vswitch", is_flag=True,
              help="Drop the override: use the switch's policy.")
@pass_esx
def portgroup_set(esx: Esx, portgroup: str, active: list[str] | None,
                  standby: list[str] | None, load_balancing: str | None,
                  failback: bool | None, notify_switches: bool | None,
                  failure_detection: str | None, use_vswitch: bool) -> None:
    """Override the failover order and teaming for one port group."""
    esx.run(ops.failover_set, portgroup=portgroup, active=active, standby=standby,
            load_balancing=_LB[load_balancing] if load_balancing else None,
            failback=failback, notify_switches=notify_switches, use_vswitch=use_vswitch)


@portgroup_policy.command("get")
@click.option("-p", "--portgroup-name", "portgroup", required=True, help="The port group.")
@json_option
@pass_esx
def portgroup_get(esx: Esx, portgroup: str, as_json: bool) -> None:
    """Show the effective failover policy of a port group and what it overrides."""
    vs = esx.find(_switch_of, portgroup)
    own = vs.portgroups[portgroup].teaming
    team = own or vs.teaming
    base = vs.teaming
    record = policy_record(team, vs.uplinks)
    record.update({
        "Override Vswitch Load Balancing": own is not None
        and own.load_balancing != base.load_balancing,
        "Override Vswitch Network Failure Detection": False,
        "Override Vswitch Notify Switches": own is not None
        and own.notify_switches != base.notify_switches,
        "Override Vswitch Failback": own is not None and own.failback != base.failback,
        "Override Vswitch Uplinks": own is not None
        and (own.active, own.standby) != (base.active, base.standby),
    })
    show_blocks([record], as_json, title=None, type_name="PortgroupFailoverPolicy",
                single=True)
