"""Where a lab's vSAN lives: /run/vmknet/labs/<lab>/vsan/ (tmpfs: gone with the lab).

    <cluster>.key            the cluster's key (0600): every peer proves it (HMAC)
    nodes/<host>.json        each node's view: role, members, partition (CMMDS)
    objects/<uuid>.json      the object directory: components, where, state, generation
    disks/<host>/            a member's local capacity: its components' files
      <uuid>.<comp>          a replica's data (sparse, the object's size)
      <uuid>.<comp>.witness  a witness component (metadata only)
      <uuid>.<comp>.dirty.<other>  the blocks <other> missed while it was absent (1 byte each)
"""

from __future__ import annotations

import re
from pathlib import Path

from ..errors import InvalidArgument
from ..lab.registry import run_dir
from ..paths import inside

UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
COMP = re.compile(r"c[0-9]{1,4}")


def check_uuid(uuid: str) -> str:
    if not isinstance(uuid, str) or not UUID.fullmatch(uuid):
        raise InvalidArgument(f"{str(uuid)[:40]!r} is not a vSAN object UUID")
    return uuid


def check_comp(comp: str) -> str:
    if not isinstance(comp, str) or not COMP.fullmatch(comp):
        raise InvalidArgument(f"{str(comp)[:20]!r} is not a component id")
    return comp


def vsan_dir(lab: str) -> Path:
    return inside(run_dir(), lab) / "vsan"  # SEC-5: a lab name stays below the run dir


def key_path(lab: str, cluster: str) -> Path:
    return inside(vsan_dir(lab), f"{cluster}.key")


def node_path(lab: str, host: str) -> Path:
    return inside(vsan_dir(lab) / "nodes", f"{host}.json")


def objects_dir(lab: str) -> Path:
    return vsan_dir(lab) / "objects"


def object_path(lab: str, uuid: str) -> Path:
    return objects_dir(lab) / f"{check_uuid(uuid)}.json"


def disk_dir(lab: str, host: str) -> Path:
    return inside(vsan_dir(lab) / "disks", host)


def component_path(lab: str, host: str, uuid: str, comp: str) -> Path:
    return disk_dir(lab, host) / f"{check_uuid(uuid)}.{check_comp(comp)}"


def log_path(lab: str, host: str) -> Path:
    return inside(vsan_dir(lab) / "logs", f"{host}.log")
