"""RPO achieved under a guest write load vs the configured RPO (vSphere Replication).

    python bench/bench_replication.py [--smoke] [--rate 20] [--rpo 2 4] [--seconds 12]

Brings up a 3-host lab (esx01 with a vSphereReplication adapter, the vr01 replication
server, esx04 with a vSphereReplicationNFC adapter), replicates a 64 MiB sparse disk
while the CBT writer writes at --rate MB/s, and prints per configured RPO the achieved
RPO (the worst replica age: ack of sync N minus the point in time of sync N-1), the ratio
achieved/configured, syncs, missed syncs and bytes per sync. The lab is removed after.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

from replication_lab import lab_yaml
from vmknet.inventory import Inventory
from vmknet.lab import lifecycle
from vmknet.nfc import Datastores
from vmknet.provision import files
from vmknet.replication import (
    ReplicaNfc,
    ReplicationConfig,
    ReplicationServer,
    SourceAgent,
    state_dir,
)

MiB = 1 << 20
LAB = lab_yaml(
    [("esx01", 11, "vSphereReplication"), ("esx04", 14, "vSphereReplicationNFC"),
     ("vr01", 20, None)])


def run(folder: Path, lab: str, rate: int, rpos: list[float], seconds: float) -> list[str]:
    inv = Inventory.open(folder / "inventory.db")
    (folder / "lab.yaml").write_text(LAB, encoding="utf-8")
    stores = Datastores(folder / "datastores")
    stores.create(lab, "esx04", "ds1")
    rows = [f"{'rate MB/s':>9} {'RPO s':>6} {'achieved s':>10} {'ratio':>6} {'syncs':>5} "
            f"{'missed':>6} {'MiB/sync':>8} {'leg 1':>11} {'leg 2':>16}"]
    try:
        lifecycle.up(inv, folder / "lab.yaml", lab)
        dc = inv.read()
        time.sleep(3.0)  # STP: the bridges forward after their listening/learning delay
        for i, rpo in enumerate(rpos):
            vm = f"bench{i}"
            p = files.create(dc, lab, vm, "esx01", disk=64 * MiB, memory=8 * MiB,
                             dirty_rate=1, disk_data=8 * MiB, stores=stores)
            disk = files.read_vmx(p).disk
            cfg = ReplicationConfig(lab, vm, "esx01", "vr01", "esx04",
                                    str(files.vm_dir(p) / disk), p.datastore, f"{vm}/{disk}",
                                    rpo=rpo, write_rate=rate)
            with ReplicaNfc(dc, lab, "esx04", stores), \
                    ReplicationServer(dc, lab, "vr01", state_dir(lab)):
                agent = SourceAgent(cfg, dc, state_dir(lab)).start()
                time.sleep(seconds)
                agent.stop()
            steady = agent.syncs[1:] or agent.syncs  # the first one is the full sync
            worst = max(s.lag for s in steady)
            per = sum(s.bytes for s in steady) / len(steady) / MiB
            leg1 = f"{agent.legs[0][0].source.host}/{agent.legs[0][0].source.vmknic}"
            leg2 = agent.leg2[0]["target"] if agent.leg2 else "-"
            rows.append(f"{rate / 1e6:>9.0f} {rpo:>6.1f} {worst:>10.2f} {worst / rpo:>6.2f} "
                        f"{len(agent.syncs):>5} {sum(not s.met for s in steady):>6} "
                        f"{per:>8.1f} {leg1:>11} {'vr01/vmk0->' + leg2:>16}")
    finally:
        lifecycle.down(inv, lab)
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="bench_replication")
    ap.add_argument("--smoke", action="store_true", help="one short run (< 30 s)")
    ap.add_argument("--rate", type=float, default=20.0, help="guest writes, MB/s")
    ap.add_argument("--rpo", type=float, nargs="+", default=[2.0, 5.0])
    ap.add_argument("--seconds", type=float, default=15.0)
    opts = ap.parse_args(argv)
    rpos, seconds = ([2.0], 8.0) if opts.smoke else (opts.rpo, opts.seconds)
    lab = f"vrb{os.getpid() % 100000}"
    with tempfile.TemporaryDirectory(prefix="vmknet-vrbench-") as tmp:
        rows = run(Path(tmp), lab, int(opts.rate * 1e6), rpos, seconds)
    print("\n".join(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
