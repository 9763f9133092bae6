"""Read-only inventory objects with vSphere's names, as the desired-state file spells them.

    GET /api/v1/datacenter                       the whole document (what `vmknet show` prints)
    GET /api/v1/hosts                            {name: summary}
    GET /api/v1/hosts/{host}                     one host, every field
    GET /api/v1/hosts/{host}/{kind}              kind: vswitches, portgroups, vmknics,
    GET /api/v1/hosts/{host}/{kind}/{name}             netstacks, nics
    GET /api/v1/clusters[/{name}]   GET /api/v1/dvs[/{name}]

Collections are objects keyed by name, like the file; objects carry every
field (defaults included) in camelCase. `portgroups` are the host's standard
port groups, each with the `vswitch` it is on (names are unique per host).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from fastapi import APIRouter, Request
from pydantic import BaseModel

from ..errors import NotFound
from ..inventory import Inventory
from ..model import (
    Cluster,
    Datacenter,
    DistributedSwitch,
    Host,
    Netstack,
    PhysicalNic,
    StandardSwitch,
    Vmknic,
)
from ..state import canonical
from .auth import read_only
from .problems import Problem

T = TypeVar("T")
router = APIRouter(prefix="/api/v1", tags=["inventory"], dependencies=[read_only])
REFUSALS: dict[int | str, dict[str, Any]] = {
    401: {"model": Problem}, 403: {"model": Problem}, 404: {"model": Problem}}


class HostSummary(BaseModel):
    nics: list[str]
    vswitches: list[str]
    portgroups: list[str]
    netstacks: list[str]
    vmknics: list[str]
    clusters: list[str]


class PortGroupOut(BaseModel):
    vswitch: str
    vlan: int
    teaming: dict[str, Any] | None


def current(request: Request) -> Datacenter:
    factory: Callable[[], Inventory] = request.app.state.inventory_factory
    return factory().read()


def dump(obj: BaseModel) -> dict[str, Any]:
    data: dict[str, Any] = obj.model_dump(mode="json", by_alias=True)
    return data


def named(items: Mapping[str, T], name: str, what: str) -> T:
    try:
        return items[name]
    except KeyError:
        raise NotFound(f"{what} {name} is not in the inventory", name=name) from None


def _host(request: Request, host: str) -> Host:
    return named(current(request).hosts, host, "Host")


def _portgroups(host: Host) -> dict[str, dict[str, Any]]:
    out = {}
    for vs_name, vs in host.vswitches.items():
        for pg_name, pg in vs.portgroups.items():
            teaming = dump(pg.teaming) if pg.teaming is not None else None
            out[pg_name] = {"vswitch": vs_name, "vlan": pg.vlan, "teaming": teaming}
    return out


@router.get("/datacenter", summary="The whole inventory as a desired-state document",
            responses=REFUSALS)
def datacenter(request: Request) -> dict[str, Any]:
    return canonical(current(request))


@router.get("/hosts", summary="Hosts (ESXi hosts), each with the names of its objects",
            responses=REFUSALS)
def hosts(request: Request) -> dict[str, HostSummary]:
    dc = current(request)
    member: dict[str, list[str]] = {}
    for c_name, cluster in dc.clusters.items():
        for h in cluster.hosts:
            member.setdefault(h, []).append(c_name)
    return {name: HostSummary(nics=list(h.nics), vswitches=list(h.vswitches),
                              portgroups=list(_portgroups(h)), netstacks=list(h.netstacks),
                              vmknics=list(h.vmknics), clusters=member.get(name, []))
            for name, h in dc.hosts.items()}


# /hosts/status (the controller's table) is routed in routes_mgmt, included before this router.


@router.get("/hosts/{host}", response_model=None, summary="One host, every field",
            responses=REFUSALS | {200: {"model": Host}})
def host(request: Request, host: str) -> dict[str, Any]:
    return dump(_host(request, host))


def _collection(kind: str, model: type[BaseModel],
                items: Callable[[Host], Mapping[str, Any]], what: str) -> None:
    def list_items(request: Request, host: str) -> dict[str, Any]:
        return {k: v if isinstance(v, dict) else dump(v)
                for k, v in items(_host(request, host)).items()}

    def one_item(request: Request, host: str, name: str) -> dict[str, Any]:
        v = named(items(_host(request, host)), name, f"{what} of host {host}:")
        return v if isinstance(v, dict) else dump(v)

    list_items.__name__, one_item.__name__ = f"list_{kind}", f"get_{kind}"
    router.add_api_route(f"/hosts/{{host}}/{kind}", list_items, methods=["GET"],
                         response_model=None,
                         summary=f"{what}s of a host", responses=REFUSALS | {
                             200: {"model": dict[str, model]}})  # type: ignore[valid-type]
    router.add_api_route(f"/hosts/{{host}}/{kind}/{{name}}", one_item, methods=["GET"],
                         response_model=None,
                         summary=f"One {what} of a host", responses=REFUSALS | {
                             200: {"model": model}})


_collection("vswitches", StandardSwitch, lambda h: h.vswitches, "Standard switch")
_collection("portgroups", PortGroupOut, _portgroups, "Standard port group")
_collection("vmknics", Vmknic, lambda h: h.vmknics, "VMkernel adapter")
_collection("netstacks", Netstack, lambda h: h.netstacks, "TCP/IP stack")
_collection("nics", PhysicalNic, lambda h: h.nics, "Physical NIC")


@router.get("/clusters", response_model=None, summary="Clusters", responses=REFUSALS | {
    200: {"model": dict[str, Cluster]}})
def clusters(request: Request) -> dict[str, Any]:
    return {k: dump(v) for k, v in current(request).clusters.items()}


@router.get("/clusters/{name}", response_model=None, summary="One cluster", responses=REFUSALS | {
    200: {"model": Cluster}})
def cluster(request: Request, name: str) -> dict[str, Any]:
    return dump(named(current(request).clusters, name, "Cluster"))


@router.get("/dvs", response_model=None,
            summary="Distributed switches, with their port groups and host uplinks",
            responses=REFUSALS | {200: {"model": dict[str, DistributedSwitch]}})
def distributed_switches(request: Request) -> dict[str, Any]:
    return {k: dump(v) for k, v in current(request).distributed_switches.items()}


@router.get("/dvs/{name}", response_model=None, summary="One distributed switch",
            responses=REFUSALS | {200: {"model": DistributedSwitch}})
def distributed_switch(request: Request, name: str) -> dict[str, Any]:
    return dump(named(current(request).distributed_switches, name, "Distributed switch"))
