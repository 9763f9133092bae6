"""Lint: findings for every design rule that is not refused outright.

Refusals (NS-*, SVC-1..5, EX-*, SW-2, STO-1/3, REQ-5) live in `checks` and
never reach lint: a state lint sees has already passed them. Lint reports
what is legal but risky, with the SPEC rule id, the object path (as in the
desired-state file) and a hint that says what to do.

Every check is a function `Context -> Iterator[Finding]` in `CHECKS`; add a
rule by adding a function there. Reachability questions go through
`resolve`/`reach`, the one path chooser.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from ..model import Datacenter
from . import lint_cluster as cluster
from . import lint_dc as dcwide
from . import lint_ft as ft
from . import lint_ha as ha
from . import lint_host as host
from . import lint_routers as routers
from .lint_base import Context, Finding, Severity

__all__ = ["CHECKS", "Finding", "Severity", "lint"]

Check = Callable[[Context], Iterator[Finding]]

CHECKS: list[tuple[str, Check]] = [
    ("REQ-1", cluster.check_vmotion),
    ("REQ-2", cluster.check_fault_tolerance),
    ("FT-3", ft.check_ft_logging_speed),
    ("HA-1", ha.check_heartbeat_datastores),
    ("HA-2", ha.check_isolation_addresses),
    ("REQ-3", cluster.check_vsan),
    ("REQ-4", cluster.check_replication),
    ("REQ-6", cluster.check_mtu_consistency),
    ("SVC-6", host.check_dedicated),
    ("PATH-8", host.check_multihoming),
    ("SW-5", dcwide.check_shared_dvportgroups),
    ("SW-7", host.check_management_redundancy),
    ("SEC-1", host.check_vmotion_isolation),
    ("SEC-6", routers.check_routed_to_management),
    ("MTU", host.check_uplink_mtu),
    ("DUP-ADDR", dcwide.check_duplicate_addresses),
    ("OVERLAP", host.check_overlap),
    ("NS-3", host.check_gateways),
    ("STO-2", dcwide.check_nfs),
]


def lint(dc: Datacenter) -> list[Finding]:
    """All findings, sorted by path, then rule (then message, for a stable order)."""
    ctx = Context.build(dc)
    found = [f for _, check in CHECKS for f in check(ctx)]
    return sorted(found, key=lambda f: (f.path, f.rule, f.message))
