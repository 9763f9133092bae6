"""Who calls: a bearer token from the book, and whether its role may do what the route does.

    @router.get("/x", dependencies=[read_only])      # any valid token
    @router.post("/y", dependencies=[operator])      # operator or admin
    def z(who: TokenEntry = admin): ...              # admin, and the caller's entry

No token or an unknown one is 401 `NotAuthenticated` (with `WWW-Authenticate:
Bearer`); a known token whose role may not is 403 `NoPermission`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from ..errors import VmknetError
from .tokens import ADMIN, OPERATOR, READ_ONLY, TokenBook, TokenEntry, allows

bearer = HTTPBearer(auto_error=False, description="A token from 'vmknet api token create'")
Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]


class NotAuthenticated(VmknetError):
    default_code = "NotAuthenticated"


def _require(role: str) -> Callable[..., TokenEntry]:
    def check(request: Request, credentials: Credentials) -> TokenEntry:
        if credentials is None:
            raise NotAuthenticated("This call needs a bearer token (Authorization: Bearer "
                                   "<token>; see 'vmknet api token create')")
        book: TokenBook = request.app.state.tokens
        entry = book.authenticate(credentials.credentials)
        if entry is None:
            raise NotAuthenticated("The bearer token is not valid (unknown or revoked)")
        if not allows(entry.role, role):
            raise VmknetError(f"Token {entry.name!r} has the role {entry.role}; this call needs "
                              f"{role}", code="NoPermission", role=entry.role, needed=role)
        return entry

    check.__name__ = f"require_{role.replace('-', '_')}"
    return check


def requires(role: str) -> Any:
    """The dependency (`Depends`) a route lists to admit `role` and the roles above it."""
    return Depends(_require(role))


read_only = requires(READ_ONLY)
operator = requires(OPERATOR)
admin = requires(ADMIN)
