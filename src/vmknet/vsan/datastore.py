"""The vsanDatastore as a VM's disk store: `[vsanDatastore] web01/web01-flat.vmdk`.

vm/disk.py's `vsan` kind opens a VM's disk here: the object named by the disk's path
in the host's vSAN cluster, created on first use with the default policy (FTT=1, as
vSAN's default storage policy), then opened from the VM's host, which may hold no
replica (its I/O then crosses the vSAN network). A host sees the datastore when it
is a member of a vSAN cluster whose node runs on it.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator

from ..errors import InvalidArgument, NotFound
from ..model import Datacenter
from . import config, directory, objects, paths
from .client import VsanObject
from .directory import ObjectMeta

NAME = "vsanDatastore"
DEFAULT_FTT = 1  # vSAN's default storage policy: one failure to tolerate, RAID-1


@contextlib.contextmanager
def _creating(lab: str) -> Iterator[None]:
    """One creator at a time: two VMs opening one new disk get one object."""
    lock = paths.objects_dir(lab) / ".create.lock"
    lock.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def object_for(dc: Datacenter, lab: str, host: str, path: str, size: int) -> ObjectMeta:
    cluster = config.cluster_of(dc, host)
    with _creating(lab):
        found = [m for m in directory.all_objects(lab) if m.name == path and m.cluster == cluster]
        if not found:
            return objects.create(dc, lab, cluster, path, size, DEFAULT_FTT)
    if found[0].size < size:
        raise InvalidArgument(f"vSAN object {path} has {found[0].size} bytes, the disk "
                              f"{size}", uuid=found[0].uuid)
    return found[0]


def open_disk(dc: Datacenter, lab: str, host: str, path: str, size: int) -> VsanObject:
    meta = object_for(dc, lab, host, path, size)
    cv = config.view(dc, meta.cluster)
    return VsanObject(lab, host, meta.uuid, config.routes(dc, cv, host),
                      config.load_key(lab, meta.cluster))


def sees(dc: Datacenter, lab: str, host: str) -> str | None:
    """Why `host` does not see the vsanDatastore, or None (STO-5's check)."""
    try:
        cluster = config.cluster_of(dc, host)
    except NotFound:
        return f"{host} is in no vSAN cluster"
    if host == config.view(dc, cluster).witness_host:
        return f"{host} is the witness host of {cluster}: it holds no data"
    if not objects.node_states(lab, (host,)):
        return f"the vSAN node of {host} is not running ('vmknet vsan start')"
    return None
