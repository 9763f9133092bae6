"""The controller relays process requests to the host's agent: the local door's
`process.start | stop | list`.

The CLI asks the controller; the controller checks the host is in the
inventory and the request against the same fixed table the agent enforces
(`vmknet.supervise.kinds`: a bad request never crosses the management
network), then calls that host's agent over mutual TLS. The agent starts the
process as its own child. An incoming VM's listeners must be addresses of the
adapters resolve() picks on that host for the service (vMotion; management for
the control channel, SEC-2): the controller checks them against the inventory,
the agent binds them in its own host's namespaces only.
"""

from __future__ import annotations

import json
from ipaddress import IPv4Interface, IPv6Interface
from typing import Any, Protocol

from ..errors import InvalidArgument, NotFound, VmknetError
from ..mgmt import wire
from ..model import Datacenter, Netstack, Service
from ..reach import static_v4, static_v6
from ..resolve import effective_adapters
from ..supervise import kinds
from .desired import vsan_peers

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
    if request["kind"] in _LISTEN_FOR:
        _check_listeners(ctl.inventory(), host, str(request["kind"]), request["args"])
    if request["kind"] == "vsan":
        _check_vsan(ctl.inventory(), host, request["args"])
    return ctl.call_agent(host, "process.start", request, START_TIMEOUT)


def _check_vsan(dc: Datacenter, host: str, args: dict[str, Any]) -> None:
    """A vSAN node listens (TCP 2233 and UDP 12321) on its host's vSAN or vSAN witness
    adapters only (SEC-2, PATH-5)."""
    want = vsan_peers(dc, str(args["cluster"]), host) if str(args["cluster"]) in dc.clusters \
        else None
    if json.loads(args["peers"]) != want:  # VSAN-1: the list is the controller's to give
        raise InvalidArgument(f"The vSAN peer list for {host} is not the one the controller "
                              "gives it (VSAN-1): every other node of its cluster by the "
                              "adapters resolve() picks", code="VSAN-1", host=host)
    allowed = receivers(dc, host, Service.VSAN) | receivers(dc, host, Service.VSAN_WITNESS)
    for e in [*args["io"], *json.loads(args["listen"])]:
        if (e["stack"], e["address"]) not in allowed:
            raise InvalidArgument(
                f"{e['address']} on stack {e['stack']} is not a vSAN adapter of {host} "
                "(SEC-2): a vSAN node listens only there", code="SEC-2", host=host)


# The listener groups of the kinds that get sockets (kinds.TABLE[kind].sockets), and the
# service each must receive: an incoming VM's streams and control channel, an FT
# secondary's FT logging connection.
_LISTEN_FOR = {"incoming": {"vmotion": Service.VMOTION, "management": Service.MANAGEMENT},
               "ft-secondary": {"ftlog": Service.FT_LOGGING}}


def receivers(dc: Datacenter, host: str, service: Service) -> set[tuple[str, str]]:
    """(stack, address) of every address of the adapters that receive `service` on `host`
    (the effective ones, after the rules' fallbacks: what traffic.sockets.listen binds)."""
    h = dc.host(host)
    out = set()
    for vmk, _ in effective_adapters(dc, host, service):
        nic = h.vmknics[vmk]
        v4 = static_v4(nic)
        found: list[IPv4Interface | IPv6Interface] = [v4] if v4 is not None else []
        found += static_v6(nic, h.netstacks.get(nic.netstack, Netstack()))
        out |= {(nic.netstack, str(a.ip)) for a in found}
    return out


def _check_listeners(dc: Datacenter, host: str, kind: str, args: dict[str, Any]) -> None:
    for group, service in _LISTEN_FOR[kind].items():
        allowed = receivers(dc, host, service)
        for e in args[group]:
            if (e["stack"], e["address"]) not in allowed:
                raise InvalidArgument(
                    f"{e['address']} on stack {e['stack']} is not an adapter of {host} that "
                    f"receives {service.tag} (SEC-2): a {kind} process listens only there",
                    code="SEC-2", host=host)


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
