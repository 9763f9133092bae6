"""Changes to a running lab through Inventory.run: VLAN isolation, injected faults, REQ-5.

The small lab (labkit.SMALL_LAB): h1 has vmk1 on PG-A (VLAN 70) and vmk2 on
PG-B (VLAN 71, stack `iso`) on one switch and one uplink, in one subnet;
h2 has vmk1 on PG-A. The controller sits on the management VLAN 10.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import pytest
from kernelkit import ping, wait_until
from labkit import changed, dump, lab_name, write_small_lab

from vmknet.dataplane import naming
from vmknet.dataplane.apply import FaultInjector
from vmknet.dataplane.linux import LinuxBackend
from vmknet.dataplane.plan import plan
from vmknet.dataplane.render import render
from vmknet.errors import DataplaneError, RuleViolation
from vmknet.inventory import Inventory
from vmknet.lab import Lab, lifecycle
from vmknet.lab.realise import KernelRealiser
from vmknet.ops import interface, vswitch
from vmknet.ops.execute import execute

STP_LIMIT = 10.0  # a new bridge port forwards after ~4 s


@dataclass
class Small:
    lab: Lab
    store: Path

    def ns(self, host: str, stack: str = "defaultTcpipStack") -> str:
        return naming.stack_ns(self.lab.name, host, stack)


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Small]:
    folder = tmp_path_factory.mktemp("small")
    inv = Inventory.open(folder / "inventory.db")
    name = lab_name()
    try:
        lifecycle.up(inv, write_small_lab(folder), name)
        yield Small(Lab.named(name), folder / "inventory.db")
    finally:
        lifecycle.down(inv, name)


def test_vlans_keep_one_subnet_apart_on_one_switch_and_uplink(small: Small) -> None:
    iso = small.ns("h1", "iso")
    # Same VLAN 70 across two hosts: reachable (once the new ports forward).
    assert wait_until(lambda: ping(small.ns("h2"), "198.18.20.1", wait=0.3), STP_LIMIT)
    # VLAN 71 on the same switch and uplink, same subnet: nothing answers.
    assert not ping(iso, "198.18.20.3", wait=0.5)
    assert not ping(iso, "198.18.20.1", wait=0.5)
    # Moving PG-B to VLAN 70 (esxcli portgroup set) realises at once: now it reaches.
    inv = Inventory.open(small.store)
    inv.run(partial(vswitch.portgroup_set, host="h1", name="PG-B", vlan=70))
    took = wait_until(lambda: ping(iso, "198.18.20.3", wait=0.3), STP_LIMIT)
    print(f"\nPG-B moved to VLAN 70: reachable after {took} s (STP)")
    assert took is not None
    inv.run(partial(vswitch.portgroup_set, host="h1", name="PG-B", vlan=71))
    assert not ping(iso, "198.18.20.3", wait=0.5)


ADD_VMK = partial(interface.add, host="h2", name="vmk7", portgroup="PG-A")


def test_injected_fault_at_any_step_leaves_kernel_and_store_as_before(small: Small) -> None:
    inv = Inventory.open(small.store)
    version, dc = inv.store.read()
    new, _ = execute(dc, ADD_VMK)
    steps = len(plan(LinuxBackend().read(small.lab.prefix), render(new, small.lab.name)))
    assert steps >= 5
    before = dump(small.lab.prefix)
    for fail_at in sorted({0, 1, steps // 2, steps - 1}):
        faulty = FaultInjector(LinuxBackend(), fail_at)
        with pytest.raises(DataplaneError, match=f"step {fail_at + 1} of {steps} failed") as err:
            Inventory.open(small.store, realiser=KernelRealiser(faulty)).run(ADD_VMK)
        assert "\n" not in err.value.message
        assert not changed(before, dump(small.lab.prefix)), f"fault at step {fail_at}"
        assert inv.store.read() == (version, dc)


def test_management_vlan_change_is_rolled_back_req5(small: Small) -> None:
    inv = Inventory.open(small.store)
    version, dc = inv.store.read()
    before = dump(small.lab.prefix)
    with pytest.raises(RuleViolation, match="rolled back: ") as err:
        inv.run(partial(vswitch.portgroup_set, host="h1", name="Management Network", vlan=99))
    assert err.value.code == "REQ-5"
    assert err.value.details["hosts"] == ["h1"]
    diff = changed(before, dump(small.lab.prefix))
    assert not diff, diff
    assert inv.store.read() == (version, dc)
    assert [(e.rule, e.path) for e in inv.events(2)] == [("MGMT-2", "hosts/h1"),
                                                          ("REQ-5", "hosts/h1")]
    assert "reverted by its agent" in err.value.message  # h1's agent took it back itself
    assert "NetworkRollbackEvent" in inv.events(2)[0].message
    # The wire is back on VLAN 10: the controller reaches h1 again once STP lets it.
    controller = naming.controller_ns(small.lab.name)
    assert wait_until(lambda: ping(controller, "198.18.0.11", wait=0.3), STP_LIMIT)
