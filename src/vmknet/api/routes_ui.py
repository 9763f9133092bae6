"""The web UI: its page at / (static files under /ui/) and the JSON it needs beyond the REST API.

    GET  /                                          the single page (no token: it holds no data)
    GET  /api/v1/ui/hosts/{host}/diagram            the host's virtual switch diagram, as data
    GET  /api/v1/ui/hosts/{host}/vmknics/{vmk}/trace  the vmnics carrying an adapter now
    GET  /api/v1/ui/traffic?host=&interval=&count=  server-sent events: bytes/s per adapter, service
    POST /api/v1/ui/changes?version=N&timeout=S     apply a document, then wait for confirmation
    GET  /api/v1/ui/changes/{id}                    the countdown and how it ended
    POST /api/v1/ui/changes/{id}/confirm            keep the change (Cockpit's "keep connection")

Same bearer tokens, roles and coded errors as the rest of the API. The page
reads the stream with fetch(), not EventSource: EventSource cannot send an
Authorization header, and a token in the URL would end up in logs.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable
from typing import Annotated, Any, Literal

from fastapi import APIRouter, FastAPI, Query, Request
from fastapi.responses import FileResponse, StreamingResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from ..errors import ConcurrentModification
from ..inventory import Inventory, Plan
from ..lab.binding import bound_lab
from ..lab.stp import port_states
from ..model import Datacenter
from ..ui import STATIC, rates, topology, trace
from .auth import operator, read_only
from .pending import PendingChanges
from .problems import Problem
from .routes_state import ChangeOut, change_out, document

router = APIRouter(prefix="/api/v1/ui", tags=["web UI"])
REFUSALS: dict[int | str, dict[str, Any]] = {
    code: {"model": Problem} for code in (400, 401, 403, 404, 409, 413, 415, 422)}
DEFAULT_CONFIRM_TIMEOUT = 20.0  # seconds: Cockpit waits about as long
REREAD_TICKS = 5  # the stream re-reads the inventory every 5 samples (adapters come and go)
# The page may load nothing from elsewhere, and runs no inline script (no token theft by XSS).
PAGE_HEADERS = {"Content-Security-Policy": "default-src 'self'; img-src 'self' data:; "
                                           "style-src 'self'; script-src 'self'; "
                                           "frame-ancestors 'none'",
                "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer",
                "Cache-Control": "no-cache"}


class PendingOut(BaseModel):
    id: str
    version: int
    timeout: float
    remaining: float
    state: Literal["waiting", "confirmed", "reverted", "revert-failed"]
    error: str | None


class ChangeStarted(BaseModel):
    change: PendingOut
    applied: int
    changes: list[ChangeOut]


def _factory(request: Request) -> Callable[[], Inventory]:
    factory: Callable[[], Inventory] = request.app.state.inventory_factory
    return factory


def _book(request: Request) -> PendingChanges:
    book: PendingChanges = request.app.state.pending
    return book


def _lab_name(inv: Inventory) -> str | None:
    lab = bound_lab(inv)
    return lab.name if lab is not None else None


@router.get("/hosts/{host}/diagram", dependencies=[read_only], responses=REFUSALS,
            summary="One host's switches, port groups, adapters and uplinks, as the diagram "
                    "draws them")
def diagram(request: Request, host: str) -> dict[str, Any]:
    return topology.host_diagram(_factory(request)().read(), host)


@router.get("/hosts/{host}/vmknics/{vmk}/trace", dependencies=[read_only], responses=REFUSALS,
            summary="The physical NICs that carry a VMkernel adapter now (STP state in a lab)")
def trace_route(request: Request, host: str, vmk: str) -> dict[str, Any]:
    inv = _factory(request)()
    lab = _lab_name(inv)
    return trace.trace(inv.read(), host, vmk, lab or "lab",
                       states=port_states if lab is not None else None)


# Not in /openapi.json: an endless event stream is no operation a client generator or a
# fuzzer (tests/unit/test_api_fuzz.py reads every answer to its end) can call; docs/ui.md
# documents it and tests/unit/test_ui_routes.py tests it.
@router.get("/traffic", dependencies=[read_only], responses=REFUSALS, include_in_schema=False,
            response_class=StreamingResponse,
            summary="Server-sent events: bytes per second per adapter and per service")
async def traffic(request: Request,
                  host: Annotated[str | None, Query(max_length=256)] = None,
                  interval: Annotated[float, Query(ge=0.2, le=10.0)] = 1.0,
                  count: Annotated[int | None, Query(ge=1, le=86400)] = None) -> StreamingResponse:
    inv = _factory(request)()
    dc = await run_in_threadpool(inv.read)
    if host is not None:
        dc.host(host)  # NotFound before the stream starts, as a coded 404
    events = _events(request, inv, host, interval, count)
    return StreamingResponse(events, media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


Source = tuple[Callable[[], rates.Reading], dict[tuple[str, str], list[str]], bool]


def _source(inv: Inventory, host: str | None) -> Source:
    """What to read each tick, the adapters' services, and whether a lab's kernel is read."""
    dc, lab = inv.read(), _lab_name(inv)
    hosts = [host] if host is not None and host in dc.hosts else sorted(dc.hosts)

    def read() -> rates.Reading:
        return rates.read_lab(dc, lab, hosts) if lab is not None else {}

    return read, rates.services_of(dc), lab is not None


async def _events(request: Request, inv: Inventory, host: str | None, interval: float,
                  count: int | None) -> AsyncIterator[str]:
    read, services, measured = await run_in_threadpool(_source, inv, host)
    meter = rates.Meter(read, services)
    start, seq = time.monotonic(), 0
    while count is None or seq < count:
        if seq and seq % REREAD_TICKS == 0:
            read, services, measured = await run_in_threadpool(_source, inv, host)
            meter.retarget(read, services)
        sample = await run_in_threadpool(meter.sample, time.monotonic())
        sample |= {"seq": seq, "time": time.time(), "measured": measured}
        yield f"event: traffic\nid: {seq}\ndata: {json.dumps(sample, separators=(',', ':'))}\n\n"
        seq += 1
        if await request.is_disconnected():
            return
        # On a fixed schedule, not "interval after the last send": no drift over hours.
        await asyncio.sleep(max(0.0, start + seq * interval - time.monotonic()))


@router.post("/changes", dependencies=[operator], responses=REFUSALS, status_code=201,
             summary="Apply a document from the page; it is reverted unless confirmed in time")
async def start_change(request: Request,
                       version: Annotated[int, Query(ge=0)],
                       timeout: Annotated[float, Query(ge=1.0, le=300.0)] =
                       DEFAULT_CONFIRM_TIMEOUT) -> ChangeStarted:
    desired = await document(request)
    inv, book = _factory(request)(), _book(request)
    book.refuse_if_waiting()

    def run() -> tuple[Plan, int, Datacenter]:
        now, before = inv.store.read()
        if now != version:
            raise ConcurrentModification(
                f"The inventory changed since the plan was made (version {version}, now "
                f"{now}): plan again", expected=version, actual=now)
        plan = inv.plan(desired)
        done = inv.apply(Plan(version, plan.changes, desired))
        return done, inv.store.read()[0], before

    done, after, before = await run_in_threadpool(run)
    change = book.start(before, after, timeout)
    return ChangeStarted(change=PendingOut(**change.public(book.now())),
                         applied=len(done.changes),
                         changes=[change_out(c) for c in done.changes])


@router.get("/changes/{change_id}", dependencies=[read_only], responses=REFUSALS,
            summary="A change applied from the page: its countdown, or how it ended")
def get_change(request: Request, change_id: str) -> PendingOut:
    book = _book(request)
    return PendingOut(**book.get(change_id).public(book.now()))


@router.post("/changes/{change_id}/confirm", dependencies=[operator], responses=REFUSALS,
             summary="The browser still reaches the controller: keep the change")
def confirm_change(request: Request, change_id: str) -> PendingOut:
    book = _book(request)
    return PendingOut(**book.confirm(change_id).public(book.now()))


def _revert(factory: Callable[[], Inventory]) -> Callable[[Datacenter], None]:
    def revert(before: Datacenter) -> None:
        inv = factory()
        inv.apply(inv.plan(before))

    return revert


def install(app: FastAPI) -> None:
    """The hook create_app calls: the UI's routes, its countdowns and its static files."""
    app.state.pending = PendingChanges(_revert(app.state.inventory_factory))
    app.include_router(router)

    @app.get("/", include_in_schema=False)
    def page() -> FileResponse:
        return FileResponse(STATIC / "index.html", headers=PAGE_HEADERS)

    app.mount("/ui", StaticFiles(directory=STATIC), name="ui")
