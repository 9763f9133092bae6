"""TCP/IP stacks (netstacks): isolated kernel TCP/IP stacks of a host (NS-1..7)."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network
from typing import Literal

from pydantic import Field

from .base import VmknetModel

DEFAULT_MAX_CONNECTIONS = 11000  # NS-6


class Route(VmknetModel):
    network: IPv4Network | IPv6Network
    gateway: IPv4Address | IPv6Address


class Netstack(VmknetModel):
    gateway: IPv4Address | None = None
    ipv6_gateway: IPv6Address | None = None
    dns_servers: list[IPv4Address | IPv6Address] = []
    search_domains: list[str] = []
    routes: list[Route] = []
    congestion_control: Literal["newreno", "cubic"] = "newreno"
    max_connections: int = Field(DEFAULT_MAX_CONNECTIONS, ge=1, le=1000000)
    ipv6_enabled: bool = True
