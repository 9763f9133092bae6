"""REQ-5: every host keeps at least one management adapter."""

from __future__ import annotations

from collections.abc import Iterator

from ..errors import RuleViolation, VmknetError
from ..model import Host, Service
from .paths import host_path


def check_management(name: str, host: Host) -> Iterator[VmknetError]:
    if not any(v.enabled and Service.MANAGEMENT in v.services for v in host.vmknics.values()):
        yield RuleViolation(
            "REQ-5",
            f"Host {name} must keep at least one enabled management adapter: "
            "tag another adapter with Management first",
            path=host_path(name),
        )
