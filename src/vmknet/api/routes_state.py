"""Desired state over HTTP: plan, apply (optimistic concurrency), lint, resolve, events.

    POST /api/v1/plan               body: a desired-state document (YAML or JSON)
    POST /api/v1/apply?version=N    the same body; N is the version the plan answered
    GET  /api/v1/lint?severity=     GET /api/v1/resolve?service=&source=&target=
    GET  /api/v1/events?limit=

Apply re-plans against the store and refuses with 409 ConcurrentModification
when the store is no longer at the version the client planned against, and
again inside the store transaction (someone may apply in between): what the
client reviewed is what is applied, or nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from ..errors import ConcurrentModification, FileFormatError, InvalidArgument
from ..inventory import Inventory, Plan
from ..model import Datacenter, Service
from ..resolve import Flow
from ..rules.lint import Finding
from ..state import loads
from ..state.diff import Change
from .auth import operator, read_only
from .problems import MAX_BODY, Problem, too_large

router = APIRouter(prefix="/api/v1", tags=["desired state"])
SEVERITIES = ("info", "warning", "error")
DOCUMENT_TYPES = ("application/yaml", "application/x-yaml", "text/yaml", "application/json",
                  "text/plain")
REFUSALS: dict[int | str, dict[str, Any]] = {
    code: {"model": Problem} for code in (400, 401, 403, 409, 413, 415, 422)}
DOCUMENT_BODY: dict[str, Any] = {"requestBody": {"required": True, "content": {
    "application/yaml": {"schema": {"type": "string"}},
    "application/json": {"schema": {"type": "object"}},
}, "description": "A desired-state document (`vmknet show` prints one), at most "
                  f"{MAX_BODY} bytes"}}


class ChangeOut(BaseModel):
    action: Literal["add", "remove", "modify", "replace"]
    path: str
    kind: str
    summary: str
    before: Any = None
    after: Any = None


class PlanOut(BaseModel):
    version: int  # the store's version the plan was made against: give it to apply
    changes: list[ChangeOut]


class ApplyOut(BaseModel):
    version: int  # the store's version after the apply
    applied: int  # number of changes
    changes: list[ChangeOut]


class FindingOut(BaseModel):
    rule: str
    severity: Literal["info", "warning", "error"]
    path: str
    message: str
    hint: str


class EndpointOut(BaseModel):
    host: str
    vmknic: str
    netstack: str
    address: str | None


class FlowOut(BaseModel):
    source: EndpointOut
    target: EndpointOut
    nextHop: str | None  # the JSON name, as the CLI's --json prints it
    reason: str


class EventOut(BaseModel):
    rule: str
    path: str
    message: str


def inventory(request: Request) -> Inventory:
    factory: Callable[[], Inventory] = request.app.state.inventory_factory
    return factory()


async def document(request: Request) -> Datacenter:
    """The body as a Datacenter; the size limit holds whatever Content-Length claims."""
    kind = request.headers.get("content-type", "application/yaml").split(";")[0].strip().lower()
    if kind not in DOCUMENT_TYPES:
        raise InvalidArgument(f"A desired-state document is sent as YAML or JSON "
                              f"({', '.join(DOCUMENT_TYPES)}), not {kind}",
                              code="UnsupportedMediaType")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BODY:
            raise too_large()
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as err:
        raise FileFormatError(f"not UTF-8 text ({err.reason} at byte {err.start})",
                              file="<request>", line=None, path="") from None
    # JSON is YAML: one loader, the same bounded parsing and line-numbered errors as a file.
    return await run_in_threadpool(loads, text, "<request>")


def change_out(c: Change) -> ChangeOut:
    return ChangeOut(action=c.action, path=c.path, kind=c.kind, summary=c.summary,
                     before=c.before, after=c.after)


@router.post("/plan", dependencies=[operator], responses=REFUSALS, openapi_extra=DOCUMENT_BODY,
             summary="The ordered changes that would make the inventory hold the document")
async def plan(request: Request) -> PlanOut:
    desired = await document(request)
    # The store and the rules are synchronous: off the event loop, like a plain `def` route.
    p = await run_in_threadpool(inventory(request).plan, desired)
    return PlanOut(version=p.version, changes=[change_out(c) for c in p.changes])


@router.post("/apply", dependencies=[operator], responses=REFUSALS, openapi_extra=DOCUMENT_BODY,
             summary="Make the inventory hold the document, all or nothing")
async def apply(request: Request,
                version: Annotated[int, Query(ge=0, description="The version that POST "
                                              "/api/v1/plan answered")]) -> ApplyOut:
    desired = await document(request)
    inv = inventory(request)

    def run() -> tuple[int, Plan]:
        fresh = inv.plan(desired)
        if fresh.version != version:
            raise ConcurrentModification(
                f"The inventory changed since the plan was made (version {version}, now "
                f"{fresh.version}): plan again", expected=version, actual=fresh.version)
        # Inventory.apply checks the version again inside its transaction.
        done = inv.apply(Plan(version, fresh.changes, desired))
        return inv.store.read()[0], done

    now, done = await run_in_threadpool(run)  # a bound lab's kernel apply takes seconds
    return ApplyOut(version=now, applied=len(done.changes),
                    changes=[change_out(c) for c in done.changes])


@router.get("/lint", dependencies=[read_only], responses=REFUSALS,
            summary="Findings of the lint rules on the inventory")
def lint(request: Request,
         severity: Literal["info", "warning", "error"] = "info") -> list[FindingOut]:
    floor = SEVERITIES.index(severity)
    found: list[Finding] = inventory(request).lint()
    return [FindingOut(rule=f.rule, severity=str(f.severity),
                       path=f.path, message=f.message, hint=f.hint)
            for f in found if SEVERITIES.index(str(f.severity)) >= floor]


@router.get("/resolve", dependencies=[read_only], responses=REFUSALS,
            summary="The adapter pairs that carry a service from one host to another")
def resolve(request: Request,
            service: Annotated[str, Query(description="API name (vmotion), esxcli tag "
                                          "(VMotion) or short name (ft)", max_length=64)],
            source: Annotated[str, Query(max_length=256)],
            target: Annotated[str, Query(max_length=256)]) -> list[FlowOut]:
    try:
        svc = Service.parse(service)
    except ValueError as err:
        raise InvalidArgument(str(err), service=service) from None
    flows: list[Flow] = inventory(request).resolve(svc, source, target)
    return [FlowOut(source=_endpoint(f.source), target=_endpoint(f.target),
                    nextHop=str(f.next_hop) if f.next_hop is not None else None,
                    reason=f.reason) for f in flows]


def _endpoint(e: Any) -> EndpointOut:
    return EndpointOut(host=e.host, vmknic=e.vmknic, netstack=e.netstack,
                       address=str(e.address) if e.address is not None else None)


@router.get("/events", dependencies=[read_only], responses=REFUSALS,
            summary="Side effects the store recorded (EX-1, REQ-5 rollbacks, ...), oldest first")
def events(request: Request,
           limit: Annotated[int, Query(ge=1, le=10000)] = 50) -> list[EventOut]:
    return [EventOut(rule=e.rule, path=e.path, message=e.message)
            for e in inventory(request).events(limit)]
