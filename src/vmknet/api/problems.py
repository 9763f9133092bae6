"""Every refusal of the REST API as `{"code", "message", "details"}`, and the body size limit.

The code is the one the CLI prints (`vmknet.errors`), the HTTP status comes
from `errors.HTTP_STATUS`. FastAPI's own refusals (request validation, an
unknown path, a wrong method) are put in the same shape, and anything
unexpected is translated once (`errors.translate`) instead of leaking a
traceback.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..errors import VmknetError, http_status, one_line, translate

MAX_BODY = 4 * 2**20  # bytes: a desired-state document of ~1000 hosts fits; more is refused


# Starlette's own refusals (unknown path, wrong method, unparsable JSON) by status
HTTP_CODES = {400: "InvalidArgument", 401: "NotAuthenticated", 403: "NoPermission",
              404: "NotFound", 405: "MethodNotAllowed", 413: "RequestTooLarge",
              415: "UnsupportedMediaType"}


class Problem(BaseModel):
    """The error body of every refusal."""

    code: str
    message: str
    details: dict[str, Any] = {}


def problem(err: VmknetError, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(_jsonable(err.to_dict()), status_code=http_status(err), headers=headers)


def _jsonable(value: Any) -> Any:
    """Details may hold addresses, paths or exceptions: as text, not a serialisation error."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set):
        return [_jsonable(v) for v in value]
    return str(value)


class BodyTooLarge(VmknetError):
    default_code = "RequestTooLarge"


def too_large(size: int | None = None) -> BodyTooLarge:
    seen = f" ({size} bytes)" if size is not None else ""
    return BodyTooLarge(f"The request body is larger than {MAX_BODY} bytes{seen}",
                        limit=MAX_BODY)


class BodyLimit:
    """ASGI middleware: refuse a body over `limit` bytes without reading it all.

    A declared Content-Length over the limit is refused before the
    application runs; a chunked body is counted as it arrives and the read
    that crosses the limit raises BodyTooLarge (answered 413 by the handler).
    """

    def __init__(self, app: ASGIApp, limit: int = MAX_BODY) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and declared > self.limit:
            response = problem(too_large(declared), {"Connection": "close"})
            await response(scope, receive, send)
            return
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    raise too_large()
            return message

        await self.app(scope, counted, send)


def _content_length(scope: Scope) -> int | None:
    for key, value in scope.get("headers", []):
        if key == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


def _validation_message(errors: Sequence[Any]) -> str:
    parts = []
    for e in errors[:5]:
        where = ".".join(str(x) for x in e.get("loc", ()) if x != "body") or "request"
        parts.append(f"{where}: {e.get('msg', 'invalid')}")
    more = f" (and {len(errors) - 5} more)" if len(errors) > 5 else ""
    return one_line("; ".join(parts) + more)


def install(app: FastAPI) -> None:
    """The exception handlers that give every refusal the one shape."""

    async def vmknet_error(_request: Request, exc: Exception) -> JSONResponse:
        err = translate(exc)
        # RFC 6750: a 401 names the scheme the client should use
        challenge = {"WWW-Authenticate": "Bearer"} if err.code == "NotAuthenticated" else None
        return problem(err, challenge)

    async def validation_error(_request: Request, exc: Exception) -> JSONResponse:
        errors = exc.errors() if isinstance(exc, RequestValidationError) else []
        fields = [{"loc": [str(x) for x in e.get("loc", ())], "message": str(e.get("msg", "")),
                   "type": str(e.get("type", ""))} for e in errors[:20]]
        return problem(VmknetError(_validation_message(errors), code="InvalidRequest",
                                   errors=fields))

    async def http_error(request: Request, exc: Exception) -> JSONResponse:
        status = exc.status_code if isinstance(exc, StarletteHTTPException) else 500
        detail = exc.detail if isinstance(exc, StarletteHTTPException) else str(exc)
        if status in (404, 405):
            detail = (f"{detail}: {request.method} {request.url.path} (the API's paths are "
                      "in /openapi.json)")
        code = HTTP_CODES.get(status, "InvalidRequest")
        response = JSONResponse({"code": code, "message": one_line(str(detail)), "details": {}},
                                status_code=status)
        if isinstance(exc, StarletteHTTPException) and exc.headers:
            response.headers.update(exc.headers)
        return response

    app.add_exception_handler(VmknetError, vmknet_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(Exception, vmknet_error)
