"""Object paths as they appear in files, errors, lint findings and plans."""

from __future__ import annotations


def host_path(host: str) -> str:
    return f"hosts/{host}"


def vmk_path(host: str, vmk: str) -> str:
    return f"hosts/{host}/vmknics/{vmk}"


def netstack_path(host: str, stack: str) -> str:
    return f"hosts/{host}/netstacks/{stack}"


def vswitch_path(host: str, vswitch: str) -> str:
    return f"hosts/{host}/vswitches/{vswitch}"


def portgroup_path(host: str, vswitch: str, portgroup: str) -> str:
    return f"hosts/{host}/vswitches/{vswitch}/portgroups/{portgroup}"


def dvs_path(dvs: str) -> str:
    return f"distributedSwitches/{dvs}"
