"""The controller's REST API: one FastAPI application over the facade (`vmknet.inventory`).

    app = create_app(controller, lambda: Inventory.open(store), TokenBook(path))

OpenAPI 3 at /openapi.json (and /docs); every path is versioned, /api/v1/...;
every call needs a bearer token (`auth`), every refusal is a coded error
(`problems`), a body over 4 MiB is refused before it is read (413).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import FastAPI

from ..inventory import Inventory
from . import problems, routes_inventory, routes_mgmt, routes_state, routes_tasks, routes_ui
from .tokens import TokenBook

VERSION = "1"


def create_app(controller: Any, inventory_factory: Callable[[], Inventory],
               tokens: TokenBook) -> FastAPI:
    """`controller`: the running `vmknet.controller.service.Controller` (None: no host table)."""
    app = FastAPI(title="vmknet controller API", version=VERSION,
                  description="The VMkernel networking inventory, its desired state and the "
                              "hosts' agents. Bearer tokens: 'vmknet api token create'.",
                  redoc_url=None)
    app.state.controller = controller
    app.state.inventory_factory = inventory_factory
    app.state.tokens = tokens
    problems.install(app)
    app.add_middleware(problems.BodyLimit)
    # routes_mgmt first: its /hosts/status must win over /hosts/{host}
    app.include_router(routes_mgmt.router)
    app.include_router(routes_inventory.router)
    app.include_router(routes_state.router)
    app.include_router(routes_tasks.router)
    routes_ui.install(app)  # the web UI at / (docs/ui.md)
    return app
