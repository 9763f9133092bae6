"""Lab files for FT: hosts with management, vMotion and one FT logging adapter each.

    lab_yaml([("esx01", 11, "198.18.16.11", 50), ("esx02", 12, "198.18.16.12", 50)])
    lab_yaml([...], controller=True)   # with a controller and host agents

A host's FT logging adapter (vmk2) is on its own vSwitch1 and uplink vmnic1, VLAN
`vlan`, so its byte counters are FT traffic only; None: the host has none.
"""

from __future__ import annotations

from collections.abc import Sequence

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
        portgroups: {{FT-Logging: {{vlan: {vlan}}}}}
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

Host = tuple[str, int, str | None, int]  # name, number, FT address or None, FT VLAN


CONTROLLER = """physical:
  controller: {vlan: 10, address: 198.18.0.250/24, rollbackTimeout: 10}
"""


def lab_yaml(hosts: Sequence[Host], controller: bool = False) -> str:
    """`controller`: the lab gets a controller and host agents (FT-2 decided there)."""
    return (CONTROLLER if controller else "") + "hosts:" + "".join(
        HOST.format(name=name, n=n, vlan=vlan,
                    ft=FT_VMK.format(address=ft) if ft else "")
        for name, n, ft, vlan in hosts)
