"""The controller's own state: hosts' agents, the lab's VMs, the caller, and API tokens.

    GET    /api/v1/hosts/status      the controller's host table (`vmknet host status`)
    GET    /api/v1/vms[/{name}]      the VMs that run in the bound lab (`vmknet vm list`)
    GET    /api/v1/session           the caller's token: id, name, role
    GET    /api/v1/tokens            admin: the tokens (never their secrets)
    POST   /api/v1/tokens            admin: a new token, its secret shown once
    DELETE /api/v1/tokens/{id}       admin: revoke
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import asdict
from typing import Any, Literal

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, Field

from ..errors import VmknetError
from ..inventory import Inventory
from ..lab.binding import require_lab
from ..vm import manage
from .auth import admin, read_only
from .bodies import openapi_body, parsed
from .problems import Problem
from .tokens import MAX_NAME, TokenBook, TokenEntry

router = APIRouter(prefix="/api/v1", tags=["management"])
REFUSALS: dict[int | str, dict[str, Any]] = {
    code: {"model": Problem} for code in (401, 403, 404, 422, 503)}


class LinkStatus(BaseModel):
    vmk: str
    address: str
    lastHeartbeat: float | None  # JSON names as `vmknet host status --json` prints


class LastChange(BaseModel):
    generation: str
    state: Literal["progressing", "confirmed", "failed", "reverted"]
    time: float
    error: str | None


class HostStatus(BaseModel):
    host: str
    condition: Literal["Available", "Degraded", "Failing", "Progressing", "NotJoined"]
    connected: bool
    lastHeartbeat: float | None
    links: list[LinkStatus]
    agentPid: int | None
    error: str | None
    lastChange: LastChange | None = None  # how the last change rolled out to it ended
    desiredGeneration: int | None = None  # the committed inventory its agent should realise
    realisedGeneration: int | None = None  # the one its agent last converged to (MGMT-3)


class VmOut(BaseModel):
    name: str
    lab: str
    host: str
    pid: int
    memory: int
    dirty_rate: int
    control: str
    since: float


class TokenOut(BaseModel):
    id: str
    name: str
    role: Literal["read-only", "operator", "admin"]
    created: float


class NewToken(BaseModel):
    role: Literal["read-only", "operator", "admin"]
    name: str = Field("", max_length=MAX_NAME)


class CreatedToken(TokenOut):
    token: str  # the secret: shown here once, stored only as its SHA-256


@router.get("/hosts/status", dependencies=[read_only], responses=REFUSALS,
            response_model=list[HostStatus],
            summary="Each host's agent as the controller sees it: condition, heartbeats")
def hosts_status(request: Request) -> Response:
    controller = request.app.state.controller
    if controller is None:
        raise VmknetError("This API is not served by a controller (no host table)",
                          code="ControllerNotRunning")
    return Response(_STATUS.body(controller), media_type="application/json")


class _StatusBody:
    """The host table as JSON, made at most every STATUS_TTL seconds: at 1,000 hosts a
    body costs ~10 ms of the one interpreter the management door shares, and callers that
    poll (the web UI, monitoring) then queue behind each other. A heartbeat comes once a
    second, so a body 0.25 s old says the same."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._made: tuple[Any, float, bytes] | None = None  # (controller, when, body)

    def body(self, controller: Any) -> bytes:
        with self._lock:
            made = self._made
            if (made is not None and made[0] is controller
                    and time.monotonic() - made[1] < STATUS_TTL):
                return made[2]
            # The controller's rows are already the schema's (tests/unit/test_api.py checks
            # it): serialised once here, not validated twice.
            rows: list[dict[str, Any]] = controller.host_status()
            body = json.dumps(rows, separators=(",", ":")).encode()
            self._made = (controller, time.monotonic(), body)
            return body


STATUS_TTL = 0.25
_STATUS = _StatusBody()


def _lab(request: Request) -> str:
    factory: Callable[[], Inventory] = request.app.state.inventory_factory
    return require_lab(factory()).name


@router.get("/vms", dependencies=[read_only], responses=REFUSALS,
            summary="The VMs that run in the lab, by name")
def vms(request: Request) -> dict[str, VmOut]:
    return {r.name: VmOut(**asdict(r)) for r in manage.records(_lab(request))}


@router.get("/vms/{name}", dependencies=[read_only], responses=REFUSALS,
            summary="One running VM: where it runs, its process, memory and dirty rate")
def vm(request: Request, name: str) -> VmOut:
    return VmOut(**asdict(manage.get(_lab(request), name)))


@router.get("/session", responses=REFUSALS, summary="The caller's token (id, name, role)")
def session(who: TokenEntry = read_only) -> TokenOut:
    return TokenOut(**who.public())


def _book(request: Request) -> TokenBook:
    book: TokenBook = request.app.state.tokens
    return book


@router.get("/tokens", dependencies=[admin], responses=REFUSALS, tags=["tokens"],
            summary="API tokens (never their secrets)")
def tokens(request: Request) -> list[TokenOut]:
    return [TokenOut(**e.public()) for e in _book(request).entries()]


@router.post("/tokens", dependencies=[admin], responses=REFUSALS, status_code=201,
             tags=["tokens"], openapi_extra=openapi_body(NewToken),
             summary="A new API token; its secret is in this answer only")
async def create_token(request: Request) -> CreatedToken:
    spec = await parsed(request, NewToken)
    secret, entry = _book(request).create(spec.role, spec.name)
    return CreatedToken(token=secret, **entry.public())


@router.delete("/tokens/{token_id}", dependencies=[admin], responses=REFUSALS,
               tags=["tokens"], summary="Revoke an API token")
def revoke_token(request: Request, token_id: str) -> TokenOut:
    return TokenOut(**_book(request).revoke(token_id).public())
