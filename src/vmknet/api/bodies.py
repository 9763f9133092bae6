"""JSON bodies read by the route itself, after its token was checked.

A body declared in a route's signature is parsed by FastAPI before the route's
dependencies run, so a caller without a token would learn how its body is
judged (422) before it is told to authenticate (401). Routes that take a JSON
object read it here instead, within a small limit, and describe it in the
OpenAPI document with `openapi_body`.
"""

from __future__ import annotations

import json
from typing import Any, TypeVar

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError

from ..errors import InvalidArgument
from .problems import BodyTooLarge

MAX_PARAMS = 64 * 1024  # parameters are a few names and numbers
M = TypeVar("M", bound=BaseModel)


def openapi_body(model: type[BaseModel], *, without: tuple[str, ...] = ()) -> dict[str, Any]:
    """`openapi_extra` for a route whose body is `model` (minus the fields the path names)."""
    schema = model.model_json_schema()
    for name in without:
        schema["properties"].pop(name, None)
    schema["required"] = [r for r in schema.get("required", []) if r not in without]
    return {"requestBody": {"required": True, "content": {
        "application/json": {"schema": schema}}}}


async def json_object(request: Request) -> dict[str, Any]:
    """The body as a JSON object (an empty body: {}), at most MAX_PARAMS bytes."""
    raw = bytearray()
    async for chunk in request.stream():
        raw += chunk
        if len(raw) > MAX_PARAMS:
            raise BodyTooLarge(f"A request's parameters are at most {MAX_PARAMS} bytes",
                               limit=MAX_PARAMS)
    try:
        body = json.loads(raw or b"{}")
    except ValueError as err:
        raise InvalidArgument(f"The body is not JSON: {err}") from None
    if not isinstance(body, dict):
        raise InvalidArgument("The body is a JSON object of the parameters")
    return body


async def parsed(request: Request, model: type[M]) -> M:
    """The body as `model`; refused as FastAPI refuses a declared body (422 InvalidRequest,
    problems.py), only after the token was checked."""
    try:
        return model.model_validate(await json_object(request))
    except ValidationError as err:
        raise RequestValidationError(
            [{**e, "loc": ("body", *e["loc"])} for e in err.errors()]) from None
