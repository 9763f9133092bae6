"""The one exception tree of vmknet.

Every error a user can see is a :class:`VmknetError` with a stable ``code``
(a vSphere fault name, or the SPEC rule id for rule violations), a one-line
``message`` that says what is wrong and what to do, and ``details``::

    VmknetError                    code
    ├── NotFound                   NotFound
    ├── AlreadyExists              AlreadyExists
    ├── InvalidArgument            InvalidArgument
    │   └── FileFormatError        InvalidArgument (file, line, object path)
    ├── ResourceInUse              ResourceInUse
    ├── RuleViolation              the rule id: EX-3, NS-4, SVC-5, STO-1 fault names, ...
    ├── NoPath                     NoPath (resolve found no adapter pair)
    ├── ConcurrentModification     ConcurrentModification (store changed under a plan)
    └── DataplaneError             DataplaneError (the kernel refused a step; errno in details)

Anything else that reaches an interface is translated once by :func:`translate`:
a PermissionError is ``NoPermission``, a missing file ``NotFound``, another
OSError ``FileFault`` (vSphere's fault names), anything else ``InternalError``
(a bug: the one line says what was raised, never a traceback).

``EXIT_CODES`` and ``HTTP_STATUS`` map codes to the CLI exit status and the
REST status, so every interface reports an error the same way.
"""

from __future__ import annotations

import re
from typing import Any


class VmknetError(Exception):
    """Base of all vmknet errors; ``str(err)`` is the one-line message."""

    default_code = "VmknetError"

    def __init__(self, message: str, *, code: str | None = None, **details: Any) -> None:
        # One line, whatever it quotes: a name holding a newline must not split the report.
        message = " ".join(message.splitlines()) if len(message.splitlines()) > 1 else message
        super().__init__(message)
        self.message = message
        self.code = code or self.default_code
        self.details: dict[str, Any] = details

    def to_dict(self) -> dict[str, Any]:
        """The REST/JSON body: ``{"code", "message", "details"}``."""
        return {"code": self.code, "message": self.message, "details": self.details}


class NotFound(VmknetError):
    default_code = "NotFound"


class AlreadyExists(VmknetError):
    default_code = "AlreadyExists"


class InvalidArgument(VmknetError):
    default_code = "InvalidArgument"


class FileFormatError(InvalidArgument):
    """A desired-state file that cannot be read; message starts ``file:line: path:``."""

    def __init__(self, message: str, *, file: str, line: int | None, path: str) -> None:
        where = f"{file}:{line}" if line is not None else file
        prefix = f"{where}: {path}: " if path else f"{where}: "
        super().__init__(prefix + message, file=file, line=line, path=path)


class ResourceInUse(VmknetError):
    default_code = "ResourceInUse"


class RuleViolation(VmknetError):
    """A SPEC rule refused the change; ``code`` is the rule id (or STO-1 fault name)."""

    def __init__(self, rule: str, message: str, **details: Any) -> None:
        super().__init__(message, code=rule, rule=rule, **details)
        self.rule = rule


class NoPath(VmknetError):
    default_code = "NoPath"


class ConcurrentModification(VmknetError):
    default_code = "ConcurrentModification"


class DataplaneError(VmknetError):
    """A kernel error, translated once at the backend seam; the apply was rolled back."""

    default_code = "DataplaneError"


EXIT_CODES: dict[str, int] = {
    "InvalidArgument": 2,
    "NotFound": 3,
    "AlreadyExists": 4,
    "ResourceInUse": 5,
    "NoPath": 6,
    "ConcurrentModification": 7,
    "DataplaneError": 8,
    "FileFault": 9,
    "NoPermission": 10,
    "InternalError": 70,  # EX_SOFTWARE: a bug in vmknet
}
"""CLI exit status per code; rule violations (any other code) exit 1."""

HTTP_STATUS: dict[str, int] = {
    "InvalidArgument": 400,
    "NotFound": 404,
    "AlreadyExists": 409,
    "ResourceInUse": 409,
    "NoPath": 422,
    "ConcurrentModification": 409,
    "DataplaneError": 500,
    "FileFault": 500,
    "NoPermission": 403,
    "InternalError": 500,
    # REST only: the request itself (authentication, size, shape) was refused
    "NotAuthenticated": 401,
    "RequestTooLarge": 413,
    "InvalidRequest": 422,
    "MethodNotAllowed": 405,
    "UnsupportedMediaType": 415,
    "ControllerNotRunning": 503,
    "HostNotConnected": 503,
}
"""REST status per code; rule violations (any other code) are 422."""


_BY_CODE: dict[str, type[VmknetError]] = {
    cls.default_code: cls for cls in (NotFound, AlreadyExists, InvalidArgument, ResourceInUse,
                                      NoPath, ConcurrentModification, DataplaneError)}
_RULE_ID = re.compile(r"[A-Z]+-[0-9]+")


def from_dict(body: dict[str, Any]) -> VmknetError:
    """The error a `to_dict()` body describes, as its own class again (a reply from the
    controller must be reported exactly as the same refusal made here would be)."""
    code, message = str(body.get("code") or "VmknetError"), str(body.get("message") or "")
    details = body.get("details")
    details = {str(k): v for k, v in details.items() if k != "code"} \
        if isinstance(details, dict) else {}
    if _RULE_ID.fullmatch(code):
        details.pop("rule", None)
        return RuleViolation(code, message, **details)
    kind = _BY_CODE.get(code)
    return kind(message, **details) if kind is not None else VmknetError(message, code=code,
                                                                          **details)


def exit_code(err: VmknetError) -> int:
    return EXIT_CODES.get(err.code, 1)


def http_status(err: VmknetError) -> int:
    return HTTP_STATUS.get(err.code, 422)


def one_line(text: str, limit: int = 300) -> str:
    """Whitespace collapsed and cut: an error is reported on exactly one line."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[:limit - 3] + "..."


def translate(exc: Exception) -> VmknetError:
    """The VmknetError an interface reports for `exc` (itself when it is one already)."""
    if isinstance(exc, VmknetError):
        return exc
    if isinstance(exc, OSError):
        where = f": {exc.filename}" if exc.filename else ""
        what = one_line(f"{exc.strerror or exc}{where}")
        if isinstance(exc, PermissionError):
            return VmknetError(f"{what} (run as root, or check the path)", code="NoPermission")
        if isinstance(exc, FileNotFoundError):
            return NotFound(what)
        return VmknetError(what, code="FileFault", errno=exc.errno)
    return VmknetError(one_line(f"unexpected {type(exc).__name__}: {exc} (a bug in vmknet: "
                                "please report it with the command that caused it)"),
                       code="InternalError", exception=type(exc).__name__)
