"""What every esxcli command shares: the host (-H), running one operation, ESXi's value types."""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from dataclasses import dataclass
from ipaddress import (
    IPv4Address,
    IPv4Network,
    IPv6Address,
    IPv6Interface,
    IPv6Network,
    ip_address,
    ip_network,
)
from typing import Any, ClassVar, Concatenate, ParamSpec, TypeVar

import click

from ...events import Event
from ...model import Datacenter, Host, Netstack, Service, Vmknic
from ...ops import lookup
from ..context import AppContext, pass_app
from .errors import esxcli_reported

HOST_KEY = "vmknet.esxcli.host"
P = ParamSpec("P")
R = TypeVar("R")
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Esx:
    """The host named by `esxcli -H` and the inventory it lives in."""

    app: AppContext
    host: str

    def run(self, operation: Callable[..., list[Event]], **kwargs: Any) -> None:
        """Execute `operation(dc, host=..., **kwargs)` all or nothing; print its events as notes."""
        with esxcli_reported():
            events = self.app.inventory.run(functools.partial(operation, host=self.host, **kwargs))
        for event in events:
            click.echo(f"{event.rule}: {event.message}", err=True)

    def datacenter(self) -> Datacenter:
        with esxcli_reported():
            return self.app.inventory.read()

    def read(self) -> Host:
        """The host's current state (refused with ESXi's message if it does not exist)."""
        dc = self.datacenter()
        with esxcli_reported():
            return dc.host(self.host)

    def find(self, getter: Callable[[Host, str], T], name: str) -> T:
        """`getter(host, name)`, its NotFound reported as ESXi does."""
        h = self.read()
        with esxcli_reported():
            return getter(h, name)

    def vmknic(self, name: str) -> Vmknic:
        return self.find(lookup.vmknic, name)

    def netstack(self, name: str) -> Netstack:
        return self.find(lookup.netstack, name)


def pass_esx(f: Callable[Concatenate[Esx, P], R]) -> Callable[P, R]:
    """Give a command the `Esx` of the enclosing `esxcli -H HOST` invocation."""

    def with_app(app: AppContext, /, *args: P.args, **kwargs: P.kwargs) -> R:
        host: str = click.get_current_context().meta[HOST_KEY]
        return f(Esx(app, host), *args, **kwargs)

    return functools.update_wrapper(pass_app(with_app), f)


def natural_key(name: str) -> tuple[str, int, str]:
    """vmk2 before vmk10, vmnic1 before vmnic12."""
    m = re.fullmatch(r"(\D*)(\d+)(.*)", name)
    return (m.group(1), int(m.group(2)), m.group(3)) if m else (name, -1, "")


class EsxBool(click.ParamType[bool]):
    """Booleans as esxcli parses them: true/false, 1/0, yes/no (any case)."""

    name = "bool"
    _values: ClassVar[dict[str, bool]] = {"true": True, "1": True, "yes": True,
                                          "false": False, "0": False, "no": False}

    def convert(self, value: Any, param: click.Parameter | None,
                ctx: click.Context | None) -> bool:
        if isinstance(value, bool):
            return value
        try:
            return self._values[str(value).strip().lower()]
        except KeyError:
            self.fail(f"'{value}' is not a boolean: use true|false|1|0|yes|no", param, ctx)


class Mtu(click.ParamType[int]):
    name = "mtu"

    def convert(self, value: Any, param: click.Parameter | None,
                ctx: click.Context | None) -> int:
        try:
            mtu = int(value)
        except (TypeError, ValueError):
            self.fail(f"'{value}' is not an MTU", param, ctx)
        if not 1280 <= mtu <= 9000:
            self.fail(f"MTU {mtu} is out of range: use 1280-9000 (SW-2)", param, ctx)
        return mtu


class IPAddr(click.ParamType[IPv4Address | IPv6Address]):
    """An IPv4 or IPv6 address, or only one version when `version` is set."""

    def __init__(self, version: int | None = None) -> None:
        self.version = version
        self.name = {4: "ipv4", 6: "ipv6"}.get(version or 0, "ip")

    def convert(self, value: Any, param: click.Parameter | None,
                ctx: click.Context | None) -> IPv4Address | IPv6Address:
        if isinstance(value, IPv4Address | IPv6Address):
            return value
        try:
            addr = ip_address(str(value).strip())
        except ValueError:
            self.fail(f"'{value}' is not a valid {self.name} address", param, ctx)
        if self.version is not None and addr.version != self.version:
            self.fail(f"'{value}' is not an IPv{self.version} address", param, ctx)
        return addr


class Network(click.ParamType[str]):
    """`net/len` or `default`, as `esxcli network ip route ipvX add -n` takes it."""

    def __init__(self, version: int) -> None:
        self.version = version
        self.name = f"ipv{version}-network"

    def convert(self, value: Any, param: click.Parameter | None,
                ctx: click.Context | None) -> str:
        text = str(value).strip()
        if text == "default":
            return text
        try:
            net: IPv4Network | IPv6Network = ip_network(text)
        except ValueError as err:
            self.fail(f"'{text}' is not a network/prefix or 'default': {err}", param, ctx)
        if net.version != self.version:
            self.fail(f"'{text}' is not an IPv{self.version} network", param, ctx)
        return str(net)


class IPv6Prefixed(click.ParamType[IPv6Interface]):
    name = "ipv6/len"

    def convert(self, value: Any, param: click.Parameter | None,
                ctx: click.Context | None) -> IPv6Interface:
        text = str(value).strip()
        try:
            iface = IPv6Interface(text)
        except ValueError:
            self.fail(f"'{text}' is not an IPv6 address/prefix, e.g. 2001:db8:1::11/64",
                      param, ctx)
        if "/" not in text:
            self.fail(f"'{text}' needs a prefix length, e.g. {text}/64", param, ctx)
        return iface


class Tag(click.ParamType[Service]):
    """A service tag by its esxcli name (VMotion, Management, VSAN, ...), any case."""

    name = "tag"

    def convert(self, value: Any, param: click.Parameter | None,
                ctx: click.Context | None) -> Service:
        if isinstance(value, Service):
            return value
        try:
            return Service.parse(str(value))
        except ValueError as err:
            self.fail(str(err), param, ctx)


def split_list(text: str) -> list[str]:
    """`-a vmnic0,vmnic1` -> ["vmnic0", "vmnic1"]; an empty string clears the list."""
    return [part.strip() for part in text.split(",") if part.strip()]


BOOL = EsxBool()
MTU = Mtu()


def vmk_option(required: bool = True) -> Callable[[Callable[P, R]], Callable[P, R]]:
    return click.option("-i", "--interface-name", "interface", required=required,
                        metavar="vmkN", help="The VMkernel adapter (vmkN).")


def netstack_option(default: str | None = "defaultTcpipStack"
                    ) -> Callable[[Callable[P, R]], Callable[P, R]]:
    return click.option("-N", "--netstack", "netstack", default=default, show_default=True,
                        help="The netstack instance (TCP/IP stack).")
