"""Physical NICs (`vmnicN`): the uplinks of a host to the physical network."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from .base import VmknetModel

DEFAULT_NIC_SPEED = 10000  # SW-1: Mbit/s of a fresh host's NICs


class PhysicalNic(VmknetModel):
    speed: int = Field(DEFAULT_NIC_SPEED, ge=10, le=400000, description="Mbit/s")
    link: Literal["up", "down"] = "up"
    mtu: int = Field(1500, ge=1280, le=9000)
    mac: str | None = None
    driver: str = "vmknet"

    @property
    def link_up(self) -> bool:
        return self.link == "up"


def default_nics(count: int = 4) -> dict[str, PhysicalNic]:
    """SW-1: `vmnic0`..`vmnicN-1`, 10000 Mbit/s, link up."""
    return {f"vmnic{i}": PhysicalNic() for i in range(count)}
