"""Helpers of the FT kernel tests: a 4-host lab with FT logging adapters, polling.

esx01 and esx02: management (vmk0), vMotion (vmk1) and FT logging (vmk2, VLAN 50,
198.18.16.0/24). esx03 has no FT logging adapter (PATH-3 / SVC-5); esx04's is in
198.18.17.0/24 on VLAN 51 without a gateway: no path to anyone (NoPath).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

HOST = """
  {name}:
    nics: {{vmnic0: {{}}, vmnic1: {{}}}}
    vswitches:
      vSwitch0:
        uplinks: [vmnic0]
        teaming: {{active: [vmnic0]}}
        portgroups: {{Management Network: {{vlan: 10}}, vMotion: {{vlan: 40}}}}
      vSwitch1:
        uplinks: [vmnic1]
        teaming: {{active: [vmnic1]}}
        portgroups: {{FT-Logging: {{vlan: {ftvlan}}}}}
    vmknics:
      vmk0:
        portgroup: Management Network
        ipv4: {{type: static, address: 198.18.0.{n}/24}}
        services: [management]
      vmk1:
        portgroup: vMotion
        ipv4: {{type: static, address: 198.18.4.{n}/24}}
        services: [vmotion]
{ft}"""
FT_VMK = """      vmk2:
        portgroup: FT-Logging
        ipv4: {{type: static, address: {address}/24}}
        services: [faultToleranceLogging]
"""


def _host(name: str, n: int, ft: str | None, vlan: int = 50) -> str:
    return HOST.format(name=name, n=n, ftvlan=vlan,
                       ft=FT_VMK.format(address=ft) if ft else "")


FT_LAB = ("hosts:" + _host("esx01", 11, "198.18.16.11") + _host("esx02", 12, "198.18.16.12")
          + _host("esx03", 13, None) + _host("esx04", 14, "198.18.17.14", vlan=51))


def wait_for(what: str, probe: Callable[[], T | None], limit: float) -> T:
    """`probe()` once it is not None (or truthy); AssertionError after `limit` s."""
    deadline = time.monotonic() + limit
    while True:
        got = probe()
        if got:
            return got
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {limit} s")
        time.sleep(0.05)
