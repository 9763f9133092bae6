"""One replication's configuration, and the checks that run before anything moves.

SVC-4: vSphere Replication can never use a custom stack; a configuration that
asks for one is refused with the rule id. Both legs are resolved first (PATH-4),
so a missing path is a NoPath before the first byte.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import RuleViolation
from ..model import DEFAULT_STACK, Datacenter, Service
from ..resolve import Flow, resolve
from . import wire


@dataclass(frozen=True)
class ReplicationConfig:
    lab: str
    vm: str
    source: str
    server: str
    target: str
    disk: str  # the source disk file (the VM's current disk)
    datastore: str  # on the target, same layout as the source
    path: str  # "<vm>/<disk>" inside the target datastore
    rpo: float  # seconds
    write_rate: int = 0  # bytes/s of the stand-in guest writer (0: none)
    seed: int = 1
    port: int = wire.PORT
    netstack: str | None = None  # only the default stack (or None) is accepted: SVC-4


def check(dc: Datacenter, cfg: ReplicationConfig) -> tuple[list[Flow], list[Flow]]:
    """SVC-4, then both legs' flows (leg 1 source -> server, leg 2 server -> target)."""
    if cfg.netstack not in (None, DEFAULT_STACK):
        raise RuleViolation(
            "SVC-4", f"vSphere Replication can never use a custom stack ({cfg.netstack}): "
            "tag a default-stack adapter with vSphereReplication instead", vm=cfg.vm)
    if cfg.rpo <= 0:
        raise ValueError("the RPO must be positive")
    return (resolve(dc, Service.REPLICATION, cfg.source, cfg.server),
            resolve(dc, Service.REPLICATION_NFC, cfg.server, cfg.target))
