"""SW-2: an adapter's MTU never exceeds its switch's MTU."""

from __future__ import annotations

from collections.abc import Iterator

from ..errors import RuleViolation, VmknetError
from ..model import Datacenter, Host
from .paths import vmk_path
from .topology import attachment


def check_mtu(dc: Datacenter, name: str, host: Host) -> Iterator[VmknetError]:
    for vmk_name, vmk in host.vmknics.items():
        att = attachment(dc, name, host, vmk)
        if att is not None and vmk.mtu > att.switch_mtu:
            yield RuleViolation(
                "SW-2",
                f"MTU {vmk.mtu} of {vmk_name} exceeds the MTU {att.switch_mtu} of switch "
                f"{att.switch}: raise the switch MTU first or lower the adapter's",
                path=vmk_path(name, vmk_name),
            )
