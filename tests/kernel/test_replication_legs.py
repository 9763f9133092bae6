"""vSphere Replication in a real lab: both legs on the PATH-4 adapters (and their counters),
the management fallbacks, RPO met under a modest write load, a consistent image after
recovery, a server restart without a full resync, and the SVC-4 refusal.

esx01 has vmk1 tagged vSphereReplication (198.18.8.11, gateway override rtr01), esx04 has
vmk1 tagged vSphereReplicationNFC (198.18.8.14); esx02 and esx03 have management only;
vr01 is the replication server appliance (management only, PATH-4).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import pytest
from labkit import lab_name
from traffickit import wait_path

from vmknet.errors import RuleViolation
from vmknet.inventory import Inventory
from vmknet.lab import lifecycle
from vmknet.model import DEFAULT_STACK, Datacenter
from vmknet.nfc import Datastores
from vmknet.provision import files, placement
from vmknet.replication import (
    ReplicaNfc,
    ReplicationConfig,
    ReplicationServer,
    SourceAgent,
    check,
    recover,
    state_dir,
)
from vmknet.replication.cbt import BLOCK, disk_digest
from vmknet.traffic.stats import adapter_counters
from vmknet.vm import manage

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
from replication_lab import lab_yaml

MiB = 1 << 20
LAB = lab_yaml(
    [("esx01", 11, "vSphereReplication"), ("esx02", 12, None), ("esx03", 13, None),
     ("esx04", 14, "vSphereReplicationNFC"), ("vr01", 20, None)])


@dataclass
class Env:
    dc: Datacenter
    lab: str
    stores: Datastores
    sd: Path

    def config(self, vm: str, source: str, target: str, **kw: object) -> ReplicationConfig:
        p = files.create(self.dc, self.lab, vm, source, disk=32 * MiB, memory=8 * MiB,
                         dirty_rate=1_000_000, disk_data=4 * MiB, stores=self.stores)
        vmx = files.read_vmx(p)
        cfg = ReplicationConfig(self.lab, vm, source, "vr01", target,
                                str(files.vm_dir(p) / vmx.disk), p.datastore,
                                f"{vm}/{vmx.disk}", rpo=2.0)
        return replace(cfg, **kw)  # type: ignore[arg-type]

    def tx(self, host: str, vmk: str) -> int:
        return adapter_counters(self.dc, self.lab, host)[vmk].tx_bytes


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    folder = tmp_path_factory.mktemp("repl")
    (folder / "lab.yaml").write_text(LAB, encoding="utf-8")
    inv = Inventory.open(folder / "inventory.db")
    name = lab_name()
    stores = Datastores(folder / "datastores")
    for host in ("esx03", "esx04"):
        stores.create(name, host, "ds1")
    try:
        lifecycle.up(inv, folder / "lab.yaml", name)
        for host, target in (("esx01", "198.18.0.20"), ("vr01", "198.18.8.14"),
                             ("esx02", "198.18.0.20"), ("vr01", "198.18.0.13")):
            wait_path(name, host, DEFAULT_STACK, target)
        yield Env(inv.read(), name, stores, state_dir(name))
    finally:
        for rec in manage.records(name):
            manage.destroy(name, rec.name)
        lifecycle.down(inv, name)


def test_legs_rpo_and_consistent_recovery(env: Env) -> None:
    cfg = env.config("web01", "esx01", "esx04", write_rate=2 * MiB)
    before = (env.tx("esx01", "vmk1"), env.tx("esx01", "vmk0"), env.tx("vr01", "vmk0"))
    with ReplicaNfc(env.dc, env.lab, "esx04", env.stores) as nfc, \
            ReplicationServer(env.dc, env.lab, "vr01", env.sd):
        assert [e.vmknic for e in nfc.endpoints] == ["vmk1"]
        agent = SourceAgent(cfg, env.dc, env.sd, verify=True).start()
        time.sleep(6.5)
        agent.stop()
    after = (env.tx("esx01", "vmk1"), env.tx("esx01", "vmk0"), env.tx("vr01", "vmk0"))
    syncs = agent.syncs
    print("\n", [(s.gen, s.blocks, round(s.lag, 2)) for s in syncs])
    assert len(syncs) >= 3 and all(s.met for s in syncs)  # RPO 2 s met at 2 MB/s
    assert syncs[0].blocks >= 64  # the first sync is the full one (4 MiB of data)
    assert after[0] - before[0] >= 4 * MiB and after[1] - before[1] < MiB  # leg 1 by vmk1
    assert after[2] - before[2] >= 4 * MiB  # leg 2 leaves vr01 by its management adapter
    assert [f.source.vmknic for f in agent.legs[0]] == ["vmk1"]
    assert [(f.source.vmknic, f.target.vmknic) for f in agent.legs[1]] == [("vmk0", "vmk1")]
    assert agent.leg2[0]["target"] == "esx04/vmk1"
    new, replica = recover(env.lab, "web01", "vr01", env.sd)
    assert new.host == "esx04" and placement.load(env.lab, "web01").host == "esx04"
    disk = files.vm_dir(new) / files.read_vmx(new).disk
    assert replica["gen"] == syncs[-1].gen
    assert disk_digest(disk) == replica["digest"]  # the source disk at that point in time
    assert files.power_on(env.dc, env.lab, "web01").host == "esx04"
    files.power_off(env.lab, "web01")


def test_path4_fallbacks_to_management(env: Env) -> None:
    cfg = env.config("web02", "esx02", "esx03")
    leg1, leg2 = check(env.dc, cfg)
    assert [(f.source.vmknic, f.target.vmknic) for f in leg1] == [("vmk0", "vmk0")]
    assert "PATH-4" in leg1[0].reason and "PATH-4" in leg2[0].reason
    with ReplicaNfc(env.dc, env.lab, "esx03", env.stores) as nfc, \
            ReplicationServer(env.dc, env.lab, "vr01", env.sd):
        assert [e.vmknic for e in nfc.endpoints] == ["vmk0"]
        agent = SourceAgent(cfg, env.dc, env.sd, verify=True).start(schedule=False)
        rec = agent.sync_now()
        agent.stop()
    assert rec is not None and agent.leg2[0]["target"] == "esx03/vmk0"
    replica = ReplicationServer(env.dc, env.lab, "vr01", env.sd).replicas()["web02"]
    target = env.stores.root(env.lab, "esx03", "ds1") / "web02" / Path(cfg.path).name
    assert disk_digest(target) == replica["digest"] == disk_digest(Path(cfg.disk))


def test_server_restart_sends_only_changed_blocks(env: Env) -> None:
    cfg = env.config("web03", "esx01", "esx04")
    with ReplicaNfc(env.dc, env.lab, "esx04", env.stores):
        server = ReplicationServer(env.dc, env.lab, "vr01", env.sd).start()
        agent = SourceAgent(cfg, env.dc, env.sd).start(schedule=False)
        try:
            full = agent.sync_now()
            server.stop()
            with open(cfg.disk, "r+b") as f, agent.tracker.paused():
                for block in (3, 100, 200):  # the guest writes while the server is down
                    f.seek(block * BLOCK)
                    f.write(bytes([block]) * BLOCK)
                    agent.tracker.dirty.add(block)
            assert agent.sync_now() is None and agent.state.error  # the server is down
            assert agent.tracker.dirty == {3, 100, 200}  # kept (and persisted) for later
            server = ReplicationServer(env.dc, env.lab, "vr01", env.sd).start()
            delta = agent.sync_now()
        finally:
            agent.stop()
            server.stop()
    assert full is not None and delta is not None
    print(f"\nfull {full.bytes} B, after restart {delta.bytes} B")
    assert full.blocks >= 64 and delta.blocks == 3
    assert 3 * BLOCK <= delta.bytes < 3 * BLOCK + 4096
    target = env.stores.root(env.lab, "esx04", "ds1") / cfg.path
    assert disk_digest(target) == disk_digest(Path(cfg.disk))


def test_svc4_custom_stack_refused(env: Env) -> None:
    cfg = replace(env.config("web04", "esx01", "esx04"), netstack="appstack")
    with pytest.raises(RuleViolation) as err:
        check(env.dc, cfg)
    assert err.value.rule == "SVC-4"
