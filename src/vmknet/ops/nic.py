"""`esxcli network nic ...`: physical NICs (link state, speed, MTU)."""

from __future__ import annotations

from ..errors import InvalidArgument
from ..events import Event
from ..model import Datacenter
from . import lookup


def set_link(dc: Datacenter, host: str, name: str, up: bool) -> list[Event]:
    h = dc.host(host)
    lookup.nic(h, name)
    h.nics[name].link = "up" if up else "down"
    return []


def set_(dc: Datacenter, host: str, name: str, *, speed: int | None = None,
         mtu: int | None = None) -> list[Event]:
    h = dc.host(host)
    lookup.nic(h, name)
    if speed is not None:
        if speed < 10:
            raise InvalidArgument(f"Speed {speed} Mbit/s is out of range")
        h.nics[name].speed = speed
    if mtu is not None:
        if not 1280 <= mtu <= 9000:
            raise InvalidArgument(f"MTU {mtu} is out of range: use 1280-9000")
        h.nics[name].mtu = mtu
    return []
