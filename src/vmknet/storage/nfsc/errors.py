"""The NFS client's errors: one tree under DataplaneError, each with a stable code.

A caller that does not know NFS still gets the usual codes for the usual cases: a file
that is not there is NotFound, one that already is AlreadyExists, a bad path
InvalidArgument. Everything the server or the wire did wrong is NfsError.
"""

from __future__ import annotations

from typing import Any

from ...errors import DataplaneError, InvalidArgument


class NfsError(DataplaneError):
    """The server refused an operation, broke the protocol, or did not answer in time."""

    default_code = "NfsError"


class NfsProtocolError(NfsError):
    """A reply that does not parse: truncated, oversized, an XID nobody asked for."""

    default_code = "NfsProtocolError"


class NfsTimeout(NfsError):
    default_code = "NfsTimeout"


class NfsStatusError(NfsError):
    """An NFS or MOUNT status other than OK; `status` is the number, `name` its name."""

    def __init__(self, message: str, *, status: int, name: str, code: str | None = None,
                 **details: Any) -> None:
        super().__init__(message, code=code, status=status, status_name=name, **details)
        self.status = status
        self.name = name


class NfsNotFound(NfsStatusError):
    default_code = "NotFound"


class NfsExists(NfsStatusError):
    default_code = "AlreadyExists"


class NfsPathError(InvalidArgument):
    """A path that would leave the export or cannot be a name on the server."""
