"""The controller relays process requests to the host's agent: the local door's
`process.start | stop | list`.

The CLI asks the controller; the controller checks the host is in the
inventory and the request against the same fixed table the agent enforces
(`vmknet.supervise.kinds`: a bad request never crosses the management
network), then calls that host's agent over mutual TLS. The agent starts the
process as its own child.
"""

from __future__ import annotations

from typing import Any, Protocol

from ..errors import InvalidArgument, NotFound, VmknetError
from ..mgmt import wire
from ..model import Datacenter
from ..supervise import kinds

START_TIMEOUT = 90.0  # s: the agent waits up to 60 s for a large VM to populate its memory


class Controller(Protocol):
    """What the relay needs of `service.Controller` (which imports this module)."""

    def inventory(self) -> Datacenter: ...

    def call_agent(self, host: str, method: str, params: dict[str, Any],
                   timeout: float = ...) -> Any: ...


def _host(ctl: Controller, params: dict[str, Any]) -> str:
    host = params.get("host")
    if not isinstance(host, str) or host not in ctl.inventory().hosts:
        raise NotFound(f"Host {str(host)[:64]!r} is not in the inventory")
    return host


def start(ctl: Controller, params: dict[str, Any]) -> Any:
    host = _host(ctl, params)
    request = {"kind": params.get("kind"), "name": params.get("name"),
               "args": params.get("args", {})}
    kinds.command(request["kind"], request["name"], request["args"], "check", host)
    return ctl.call_agent(host, "process.start", request, START_TIMEOUT)


def stop(ctl: Controller, params: dict[str, Any]) -> Any:
    host = _host(ctl, params)
    kind, name = params.get("kind"), params.get("name")
    if not isinstance(kind, str) or not isinstance(name, str):
        raise InvalidArgument("process.stop needs a kind and a name")
    return ctl.call_agent(host, "process.stop", {"kind": kind, "name": name}, START_TIMEOUT)


def listing(ctl: Controller, params: dict[str, Any]) -> Any:
    """One host's processes, or every host's (a host that does not answer: its error)."""
    if params.get("host") is not None:
        return [ctl.call_agent(_host(ctl, params), "process.list", {})]
    out: list[dict[str, Any]] = []
    for host in sorted(ctl.inventory().hosts):
        try:
            out.append(ctl.call_agent(host, "process.list", {}))
        except VmknetError as err:
            out.append({"host": host, "error": err.to_dict()})
    return out


def handlers(ctl: Controller) -> dict[str, wire.Handler]:
    return {"process.start": lambda p: start(ctl, p), "process.stop": lambda p: stop(ctl, p),
            "process.list": lambda p: listing(ctl, p)}
