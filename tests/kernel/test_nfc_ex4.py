"""EX-4 in the kernel: a copy running over a default-stack provisioning adapter when the first
vSphereProvisioning-stack adapter appears completes there; the next copy uses that stack.

The adapter is added the way an administrator does it (`esxcli network ip interface add -N
vSphereProvisioning`, an Inventory operation realised in the lab) while a rate-limited
copy runs.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from ipaddress import IPv4Address
from pathlib import Path

import pytest
from labkit import lab_name
from test_nfc_copy import MiB, digest, make_sparse
from traffickit import wait_path

from vmknet.events import Event
from vmknet.inventory import Inventory
from vmknet.lab import Lab, lifecycle
from vmknet.model import DEFAULT_STACK, PROVISIONING_STACK, Datacenter, Service
from vmknet.nfc import CopyReport, Datastores, NfcServer, copy_file
from vmknet.ops import interface
from vmknet.traffic.stats import adapter_counters

HOST = """
    nics: {vmnic0: {}, vmnic1: {}}
    vswitches:
      vSwitch0:
        uplinks: [vmnic0]
        teaming: {active: [vmnic0]}
        portgroups: {Management Network: {vlan: 10}}
      vSwitch1:
        uplinks: [vmnic1]
        teaming: {active: [vmnic1]}
        portgroups: {Prov: {vlan: 80}, Prov-B: {vlan: 81}}
    vmknics:
      vmk0:
        portgroup: Management Network
        ipv4: {type: static, address: 198.18.0.1%d/24}
        services: [management]
      vmk1:
        portgroup: Prov
        ipv4: {type: static, address: 198.18.8.1%d/24}
        services: [vSphereProvisioning]
"""
EX4_LAB = ("physical:\n  controller: {vlan: 10, address: 198.18.0.250/24}\nhosts:\n"
           f"  esx01:{HOST % (1, 1)}  esx02:{HOST % (2, 2)}")


@pytest.fixture(scope="module")
def ex4(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Inventory, Lab, Datastores]]:
    folder = tmp_path_factory.mktemp("nfcex4")
    (folder / "ex4.yaml").write_text(EX4_LAB, encoding="utf-8")
    inv = Inventory.open(folder / "inventory.db")
    name = lab_name()
    stores = Datastores(folder / "datastores")
    for host in ("esx01", "esx02"):
        stores.create(name, host, "ds1")
    try:
        lifecycle.up(inv, folder / "ex4.yaml", name)
        wait_path(name, "esx01", DEFAULT_STACK, "198.18.8.12")
        yield inv, Lab.named(name), stores
    finally:
        lifecycle.down(inv, name)


def _add_provisioning_stack_adapters(dc: Datacenter) -> list[Event]:
    """One operation: vmk2 on the vSphereProvisioning stack of both hosts (EX-4 fires)."""
    events: list[Event] = []
    for host, address in (("esx01", "198.18.9.11"), ("esx02", "198.18.9.12")):
        events += interface.add(dc, host, "vmk2", portgroup="Prov-B",
                                netstack=PROVISIONING_STACK)
        events += interface.ipv4_set(dc, host, "vmk2", type="static",
                                     address=IPv4Address(address),
                                     netmask=IPv4Address("255.255.255.0"))
    return events


def test_ex4_running_copy_completes_next_uses_the_provisioning_stack(
        ex4: tuple[Inventory, Lab, Datastores]) -> None:
    inv, lab, stores = ex4
    root1, root2 = (stores.root(lab.name, h, "ds1") for h in ("esx01", "esx02"))
    before = make_sparse(root1 / "d.vmdk", 32 * MiB, 8 * MiB)
    dc = inv.read()
    started = threading.Event()
    out: list[CopyReport] = []
    with NfcServer(dc, lab, "esx02", stores) as server:
        def progress(done: int, total: int) -> None:
            if done >= total // 8:
                started.set()

        thread = threading.Thread(target=lambda: out.append(copy_file(
            dc, lab, "esx01", "ds1", "d.vmdk", "esx02", "ds1", "d.vmdk", stores=stores,
            bandwidth_limit=4e6, progress=progress)))
        thread.start()
        assert started.wait(10)
        events = inv.run(_add_provisioning_stack_adapters)
        dc2 = inv.read()
        server.refresh(dc2)  # new connections now land on vmk2; the running one stays
        thread.join(30)
        assert out, "the copy running across EX-4 did not complete"
        first = out[0]
        assert [(f.source_vmk, f.source_stack, f.target_vmk) for f in first.flows] == \
            [("vmk1", DEFAULT_STACK, "vmk1")]
        assert first.seconds > 1.0 and not first.resumed  # it really ran across the change
        assert digest(root2 / "d.vmdk") == before
        assert any(e.rule == "EX-4" or "EX-4" in e.message for e in events)
        assert Service.PROVISIONING not in dc2.hosts["esx01"].vmknics["vmk1"].services
        assert [(e.vmknic, e.netstack) for e in server.endpoints] == \
            [("vmk2", PROVISIONING_STACK)]

        wait_path(lab.name, "esx01", PROVISIONING_STACK, "198.18.9.12")
        os.unlink(root2 / "d.vmdk")
        t0 = adapter_counters(dc2, lab, "esx01")
        second = copy_file(dc2, lab, "esx01", "ds1", "d.vmdk", "esx02", "ds1", "d.vmdk",
                           stores=stores)
        t1 = adapter_counters(dc2, lab, "esx01")
    assert [(f.source_vmk, f.source_stack, f.target_vmk) for f in second.flows] == \
        [("vmk2", PROVISIONING_STACK, "vmk2")]
    assert t1["vmk2"].tx_bytes - t0["vmk2"].tx_bytes >= 8 * MiB
    assert t1["vmk1"].tx_bytes - t0["vmk1"].tx_bytes < MiB
    assert digest(Path(root2 / "d.vmdk")) == before
