"""VM operations: power (synchronous, one host's agent) and the controller's tasks.

    POST   /api/v1/vms                operator: boot a VM on a host (its agent's child)
    DELETE /api/v1/vms/{name}         operator: stop a running VM, release its memory
    POST   /api/v1/vms/{name}/power-on|power-off  operator: a VM with files (vm create --disk)
    POST /api/v1/vms/{name}/vmotion   operator: live migration   -> 202, the task
    POST /api/v1/vms/{name}/migrate   operator: cold migration   -> 202, the task
    POST /api/v1/vms/{name}/clone     operator: a copy on a host -> 202, the task
    GET  /api/v1/tasks                the tasks (running and recently ended)
    GET  /api/v1/tasks/{id}           one task: state, progress events, report or error

The body is the task's parameters (`VmotionParams`, ... in JSON); the VM comes
from the path. A refused start (a bad name, a VM with a task running) answers
its coded error; a task that fails later says so in its `error`, with the code.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from ..controller.tasks import MAX_WAIT, CloneParams, MigrateParams, Tasks, VmotionParams
from ..errors import InvalidArgument, VmknetError
from ..inventory import Inventory
from ..lab.binding import require_lab
from ..model import Datacenter
from ..model.names import HostName, VmName
from ..provision import files
from ..vm import manage
from ..vm.units import MAX_MEMORY, PAGE_SIZE
from .auth import operator, read_only
from .bodies import json_object, openapi_body, parsed
from .routes_mgmt import REFUSALS

router = APIRouter(prefix="/api/v1", tags=["tasks"])


class NewVm(BaseModel):
    """`vmknet vm create NAME -H HOST --memory --dirty-rate --seed`, as JSON."""

    model_config = ConfigDict(extra="forbid")

    name: VmName
    host: HostName
    memory: Annotated[int, Field(ge=PAGE_SIZE, le=MAX_MEMORY)] = 256 << 20
    dirtyRate: Annotated[int, Field(ge=0, le=10 << 30)] = 50_000_000
    seed: Annotated[int, Field(ge=0, le=2**32 - 1)] = 1


class VmPower(BaseModel):
    name: str
    host: str
    pid: int | None
    state: Literal["poweredOn", "poweredOff"]


def _lab_and_dc(request: Request) -> tuple[str, Datacenter]:
    factory: Callable[[], Inventory] = request.app.state.inventory_factory
    inv = factory()
    return require_lab(inv).name, inv.read()


@router.post("/vms", dependencies=[operator], responses=REFUSALS, status_code=201,
             openapi_extra=openapi_body(NewVm), summary="Boot a VM on a host: its agent starts it")
async def create_vm(request: Request) -> VmPower:
    body = await parsed(request, NewVm)
    lab, dc = _lab_and_dc(request)
    rec = await run_in_threadpool(manage.create, dc, lab, body.name, body.host, body.memory,
                                  body.dirtyRate, body.seed)
    return VmPower(name=rec.name, host=rec.host, pid=rec.pid, state="poweredOn")


@router.delete("/vms/{name}", dependencies=[operator], responses=REFUSALS,
               summary="Stop a running VM and release its memory")
def destroy_vm(request: Request, name: VmName) -> VmPower:
    rec = manage.destroy(_lab_and_dc(request)[0], name)
    return VmPower(name=rec.name, host=rec.host, pid=None, state="poweredOff")


@router.post("/vms/{name}/power-on", dependencies=[operator], responses=REFUSALS,
             summary="Boot a VM from its files, on the host that holds them")
def power_on(request: Request, name: VmName) -> VmPower:
    lab, dc = _lab_and_dc(request)
    rec = files.power_on(dc, lab, name)
    return VmPower(name=rec.name, host=rec.host, pid=rec.pid, state="poweredOn")


@router.post("/vms/{name}/power-off", dependencies=[operator], responses=REFUSALS,
             summary="Stop a VM's process; its files and registration stay")
def power_off(request: Request, name: VmName) -> VmPower:
    p = files.power_off(_lab_and_dc(request)[0], name)
    return VmPower(name=name, host=p.host, pid=None, state="poweredOff")


def _tasks(request: Request) -> Tasks:
    tasks: Tasks | None = getattr(request.app.state.controller, "tasks", None)
    if tasks is None:
        raise VmknetError("This API is not served by a controller (no tasks)",
                          code="ControllerNotRunning")
    return tasks


async def _start(request: Request, kind: str, name: str) -> dict[str, Any]:
    body = await json_object(request)
    if "vm" in body:
        raise InvalidArgument("The VM is named by the path, not the body")
    return await run_in_threadpool(_tasks(request).start, kind, {**body, "vm": name})


@router.post("/vms/{name}/vmotion", dependencies=[operator], responses=REFUSALS,
             status_code=202, openapi_extra=openapi_body(VmotionParams, without=("vm",)),
             summary="Live-migrate a running VM (a task)")
async def vmotion(request: Request, name: str) -> dict[str, Any]:
    return await _start(request, "vmotion", name)


@router.post("/vms/{name}/migrate", dependencies=[operator], responses=REFUSALS,
             status_code=202, openapi_extra=openapi_body(MigrateParams, without=("vm",)),
             summary="Cold-migrate a powered-off VM's files (a task)")
async def migrate(request: Request, name: str) -> dict[str, Any]:
    return await _start(request, "migrate", name)


@router.post("/vms/{name}/clone", dependencies=[operator], responses=REFUSALS,
             status_code=202, openapi_extra=openapi_body(CloneParams, without=("vm",)),
             summary="Clone a VM's files to a host (a task)")
async def clone(request: Request, name: str) -> dict[str, Any]:
    return await _start(request, "clone", name)


@router.get("/tasks", dependencies=[read_only], responses=REFUSALS,
            summary="The controller's tasks, running and recently ended")
def tasks(request: Request) -> list[dict[str, Any]]:
    return _tasks(request).list()


@router.get("/tasks/{task_id}", dependencies=[read_only], responses=REFUSALS,
            summary="One task; with `wait`, held until it has news or ended")
async def task(request: Request, task_id: str,
               after: Annotated[int, Query(ge=0, description="Progress events after this seq")] = 0,
               wait: Annotated[float, Query(ge=0, le=MAX_WAIT,
                                            description="Seconds to hold the answer for news")] = 0
               ) -> dict[str, Any]:
    found = _tasks(request)
    if wait:
        return await run_in_threadpool(found.wait, task_id, after, wait)
    return found.get(task_id, after)
