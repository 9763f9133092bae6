"""Recovery: bring the replica up on the target with the last consistent image.

The replica disk holds the last applied generation (the server applies a whole
delta before it records it). Recovery stops the source VM (a failover: the
source site is gone or given up), writes the VM's configuration beside the
replica on the target and moves the VM's placement record there
(provision.placement), so provision.files.power_on boots it on the target.
"""

from __future__ import annotations

from pathlib import Path

from ..errors import NotFound
from ..provision import files, placement
from ..provision.placement import Placement
from ..supervise.records import read_json


def recover(lab: str, vm: str, server: str, state_dir: Path) -> tuple[Placement, dict[str, object]]:
    """Register `vm` on its replica's target; returns (new placement, the replica record)."""
    replica = read_json(state_dir / f"server-{server}.json").get(vm)
    if not replica:
        raise NotFound(f"VM {vm} has no replica on {server}: configure replication first", vm=vm)
    src = files.power_off(lab, vm)
    vmx = files.read_vmx(src)
    new = Placement(vm, lab, str(replica["target"]), str(replica["datastore"]), src.base)
    folder = files.vm_dir(new)
    folder.mkdir(parents=True, exist_ok=True)
    files.write_vmx(folder, vmx)
    placement.save(new)  # only now: the replica files are complete and configured
    return new, dict(replica)
