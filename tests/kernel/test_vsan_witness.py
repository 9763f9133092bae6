"""A two-host vSAN cluster with a witness host, witness traffic on vsanWitness adapters
(VSAN-3), and the object quorum (VSAN-4), in a real lab.

esx01 and esx02 hold the data (vmk1 tagged VSAN, VLAN 50); wit01 is the cluster's witness
host (vsanConfig.witnessHost): its vmk1 is tagged vsanWitness on VLAN 51, and so is each
data host's vmk3. An FTT=1 object gets its replicas on esx01 and esx02 and its witness
on wit01; everything between a data host and the witness goes over vmk3, nothing of it
over vmk1. Losing esx02 leaves esx01 and the witness, a majority: I/O goes on. Losing the
witness too leaves one vote of three: the object is inaccessible, and says so.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from labkit import lab_name
from traffickit import wait_path
from vsankit import wait_for

from vmknet.inventory import Inventory
from vmknet.lab import lifecycle
from vmknet.model import DEFAULT_STACK
from vmknet.traffic.stats import adapter_counters
from vmknet.vsan import config, directory, health, objects, open_object, procs, wire
from vmknet.vsan.objects import node_states

HOST = """  {name}:
    nics: {{vmnic0: {{}}, vmnic1: {{}}, vmnic2: {{}}}}
    vswitches:
      vSwitch0:
        uplinks: [vmnic0]
        portgroups: {{Management Network: {{vlan: 10}}}}
      vSwitch1:
        uplinks: [vmnic1]
        portgroups: {{vSAN: {{vlan: 50}}}}
      vSwitch2:
        uplinks: [vmnic2]
        portgroups: {{Witness: {{vlan: 51}}}}
    vmknics:
      vmk0:
        portgroup: Management Network
        ipv4: {{type: static, address: 198.18.0.{n}/24}}
        services: [management]
{data}      vmk3:
        portgroup: Witness
        ipv4: {{type: static, address: 198.18.51.{n}/24}}
        services: [vsanWitness]
"""
DATA = """      vmk1:
        portgroup: vSAN
        ipv4: {{type: static, address: 198.18.50.{n}/24}}
        services: [vsan]
"""
LAB = ("hosts:\n" + "".join(HOST.format(name=h, n=n, data=DATA.format(n=n) if d else "")
                            for h, n, d in (("esx01", 11, True), ("esx02", 12, True),
                                            ("wit01", 20, False)))
       + "clusters:\n  cl01:\n    vsan: true\n    hosts: [esx01, esx02]\n"
         "    vsanConfig: {witnessHost: wit01}\n")
NODES = ("esx01", "esx02", "wit01")


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Inventory, str]]:
    folder = tmp_path_factory.mktemp("vsanw")
    (folder / "lab.yaml").write_text(LAB, encoding="utf-8")
    inv = Inventory.open(folder / "inventory.db")
    name = lab_name()
    try:
        lifecycle.up(inv, Path(folder / "lab.yaml"), name)
        wait_path(name, "esx01", DEFAULT_STACK, "198.18.50.12")
        for h in ("esx01", "esx02"):
            wait_path(name, h, DEFAULT_STACK, "198.18.51.20")
        procs.start(inv.read(), name, "cl01")
        wait_for("membership", lambda: len(node_states(name, NODES)) == 3 and all(
            s["partition"] == list(NODES) for s in node_states(name, NODES).values()), 15)
        yield inv, name
    finally:
        procs.stop(name)
        lifecycle.down(inv, name)


def test_witness_traffic_separation_and_quorum(env: tuple[Inventory, str]) -> None:
    inv, lab = env
    dc = inv.read()
    cv = config.view(dc, "cl01")
    peers = {p.host: p for p in config.peers(dc, cv, "esx01")}
    assert peers["wit01"].witness and peers["wit01"].source == "198.18.51.11"
    assert peers["esx02"].address == "198.18.50.12" and not peers["esx02"].witness
    assert health.run(dc, lab, "cl01")["overall"] == "green"
    meta = objects.create(dc, lab, "cl01", "two-node", 8 << 20, 1)
    assert {c.host for c in meta.replicas()} == {"esx01", "esx02"}
    witness = meta.witness()
    assert witness is not None and witness.host == "wit01"
    before = adapter_counters(dc, lab, "wit01")
    wait_for("witness heartbeats", lambda: adapter_counters(dc, lab, "wit01")["vmk3"].rx_bytes
             > before["vmk3"].rx_bytes + 1000, 5)
    data = os.urandom(1 << 20)
    with open_object(lab, "esx01", meta.uuid) as disk:
        disk.write(0, data)
        procs.kill(lab, "esx02")
        disk.write(1 << 20, data)  # esx01 and the witness: 2 votes of 3
        assert directory.load(lab, meta.uuid).comp(meta.replicas()[1].id).state == "absent"
        assert disk.read(1 << 20, 1 << 20) == data
    procs.start(dc, lab, "cl01", ["esx02"])
    wait_for("resynced", lambda: directory.load(lab, meta.uuid).health() == "healthy", 15)
    with open_object(lab, "esx01", meta.uuid) as disk:
        procs.kill(lab, "wit01")
        procs.kill(lab, "esx02")
        with pytest.raises(wire.VsanError) as got:  # 1 vote of 3: VSAN-4
            disk.write(0, data)
        assert got.value.code == "VsanInaccessible"
