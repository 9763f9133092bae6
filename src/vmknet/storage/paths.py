"""Storage paths and devices from what discovery found (pure): ESXi's names and numbers.

One path per bound adapter, target portal and LUN (STO-4). `vmhba64:C1:T0:L2`:
C is the channel, one per bound VMkernel adapter in binding order (software
iSCSI "uses the channel number to show multiple paths to the same target"),
T numbers the (target, portal) pairs the adapter found, in sorted order, the
same on every channel, L is the array's LUN number. A device is one LUN of one
target, named `naa.6...` from a hash of the IQN and LUN: every host that sees
the LUN gives it the same name, as a page-0x83 NAA identifier would.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

SESSION_BASE = 0x00023D000001  # ISID of the first session (ESXi's software iSCSI prefix)


@dataclass(frozen=True, slots=True)
class ScannedLun:
    lun: int
    size: int  # bytes
    block: int  # logical block length


@dataclass(frozen=True, slots=True)
class ScannedTarget:
    iqn: str
    portal: str
    tpgt: int
    luns: tuple[ScannedLun, ...]


@dataclass(frozen=True, slots=True)
class Scan:
    """What one bound adapter (a channel) found at one send-target portal."""

    channel: int
    vmk: str | None  # None: no port binding, the stack's routing picks the adapter
    sendtarget: str
    targets: tuple[ScannedTarget, ...]
    error: str | None = None


@dataclass(frozen=True, slots=True)
class StoragePath:
    adapter: str
    channel: int
    target: int
    lun: int
    vmk: str | None
    iqn: str
    portal: str
    tpgt: int
    device: str
    size: int
    block: int

    @property
    def runtime_name(self) -> str:
        return f"{self.adapter}:C{self.channel}:T{self.target}:L{self.lun}"

    @property
    def session(self) -> str:
        return f"{SESSION_BASE + self.channel:012x}"


def device_id(iqn: str, lun: int) -> str:
    """`naa.6` + 31 hex digits, the same for a LUN on every host (NAA IEEE Registered Ext.)."""
    return "naa.6" + hashlib.sha256(f"{iqn}/{lun}".encode()).hexdigest()[:31]


def initiator_name(host: str) -> str:
    """The software adapter's IQN, as ESXi forms it: iqn.1998-01.com.vmware:<host>-<8 hex>."""
    return f"iqn.1998-01.com.vmware:{host}-{hashlib.sha256(host.encode()).hexdigest()[:8]}"


def target_numbers(scans: list[Scan]) -> dict[tuple[str, str], int]:
    """(iqn, portal) -> T, the same on every channel of the adapter."""
    pairs = sorted({(t.iqn, t.portal) for s in scans for t in s.targets})
    return {pair: i for i, pair in enumerate(pairs)}


def paths(adapter: str, scans: list[Scan]) -> list[StoragePath]:
    """Every path the scans found, ordered by runtime name (channel, target, LUN)."""
    numbers = target_numbers(scans)
    out = [StoragePath(adapter, s.channel, numbers[(t.iqn, t.portal)], lun.lun, s.vmk, t.iqn,
                       t.portal, t.tpgt, device_id(t.iqn, lun.lun), lun.size, lun.block)
           for s in scans for t in s.targets for lun in t.luns]
    unique = {(p.channel, p.target, p.lun): p for p in out}  # two send targets, one portal
    return [unique[k] for k in sorted(unique)]


@dataclass(frozen=True, slots=True)
class Device:
    id: str
    iqn: str
    lun: int
    size: int
    block: int
    paths: int


def devices(all_paths: list[StoragePath]) -> list[Device]:
    """One device per (target, LUN), with the number of paths to it, sorted by id."""
    found: dict[str, Device] = {}
    for p in all_paths:
        seen = found.get(p.device)
        found[p.device] = Device(p.device, p.iqn, p.lun, p.size, p.block,
                                 1 if seen is None else seen.paths + 1)
    return [found[k] for k in sorted(found)]
