"""SW-4 in the kernel: explicit failover order, failover when the active uplink loses link,
failback when it returns, measured with real pings and per-uplink counters.

The NIC goes down the way an administrator does it (`esxcli network nic down`,
an Inventory operation realised in the lab), not by poking the kernel.
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import partial
from pathlib import Path

import pytest
from kernelkit import ping, run, wait_until
from labkit import lab_name

from vmknet.dataplane import naming
from vmknet.inventory import Inventory
from vmknet.lab import Lab, lifecycle
from vmknet.ops import nic
from vmknet.traffic.stats import uplink_counters

BOUND_S = 20.0  # STP needs 2 x forward delay (2 s) plus detection; anything near this is a bug

HOST = """
    nics: {vmnic0: {}, vmnic1: {}, vmnic2: {}, vmnic3: {}}
    vswitches:
      vSwitch0:
        uplinks: [vmnic0, vmnic1]
        teaming: {loadBalancing: explicit, active: [vmnic0], standby: [vmnic1]}
        portgroups: {Management Network: {vlan: 10}}
      vSwitch1:
        uplinks: [vmnic2, vmnic3]
        teaming: {active: [vmnic2, vmnic3]}
        portgroups:
          vMotion-A:
            vlan: 40
            teaming: {loadBalancing: explicit, active: [vmnic2], standby: [vmnic3]}
    vmknics:
      vmk0:
        portgroup: Management Network
        ipv4: {type: static, address: 198.18.0.1%d/24}
        services: [management]
      vmk1:
        portgroup: vMotion-A
        netstack: vmotion
        ipv4: {type: static, address: 198.18.4.1%d/24}
"""
TEAM_LAB = ("physical:\n  controller: {vlan: 10, address: 198.18.0.250/24}\nhosts:\n"
            f"  h1:{HOST % (1, 1)}  h2:{HOST % (2, 2)}")
PEER = "198.18.4.12"


@pytest.fixture(scope="module")
def team(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Inventory, Lab]]:
    folder = tmp_path_factory.mktemp("team")
    (folder / "team.yaml").write_text(TEAM_LAB, encoding="utf-8")
    inv = Inventory.open(folder / "inventory.db")
    name = lab_name()
    try:
        lifecycle.up(inv, Path(folder / "team.yaml"), name)
        yield inv, Lab.named(name)
    finally:
        lifecycle.down(inv, name)


def _ns(lab: Lab) -> str:
    return naming.stack_ns(lab.name, "h1", "vmotion")


def _carried_by(inv: Inventory, lab: Lab) -> str | None:
    """The uplink of h1 that carried a burst of 20 x 1000-byte pings (None: the burst was lost)."""
    def tx() -> dict[str, int]:
        return {n: c.tx_bytes for n, (c, _) in uplink_counters(inv.read(), lab, "h1").items()}

    before = tx()
    run(_ns(lab), "ping", "-n", "-q", "-c", "20", "-i", "0.02", "-W", "1", "-s", "1000", PEER)
    after = tx()
    grew = {n: after[n] - before.get(n, 0) for n in after}
    busiest = max(grew, key=lambda n: grew[n])
    # STP BPDUs (~50 bytes a second) cross every wire; the burst is 20 kB on one uplink only
    return busiest if grew[busiest] >= 20 * 1000 else None


def _reaches(lab: Lab) -> bool:
    return ping(_ns(lab), PEER, wait=0.3)


def test_explicit_failover_order_uses_the_active_uplink(team: tuple[Inventory, Lab]) -> None:
    inv, lab = team
    assert wait_until(lambda: _reaches(lab), BOUND_S) is not None
    assert _carried_by(inv, lab) == "vmnic2"


def test_failover_to_standby_then_failback(team: tuple[Inventory, Lab]) -> None:
    inv, lab = team
    assert wait_until(lambda: _reaches(lab), BOUND_S) is not None

    inv.run(partial(nic.set_link, host="h1", name="vmnic2", up=False))
    failover = wait_until(lambda: _reaches(lab), BOUND_S, step=0.1)
    assert failover is not None, "no connectivity over the standby uplink"
    assert _carried_by(inv, lab) == "vmnic3"

    inv.run(partial(nic.set_link, host="h1", name="vmnic2", up=True))
    failback = wait_until(lambda: _reaches(lab) and _carried_by(inv, lab) == "vmnic2",
                          BOUND_S, step=0.2)
    assert failback is not None, "traffic did not return to vmnic2 (failback)"
    print(f"\nSW-4: failover {failover:.1f} s, failback {failback:.1f} s")
