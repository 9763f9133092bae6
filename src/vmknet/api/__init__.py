"""The controller's REST API (FastAPI): `create_app`, tokens and roles, and its serving."""

from .app import create_app
from .tokens import ADMIN, OPERATOR, READ_ONLY, ROLES, TokenBook

__all__ = ["ADMIN", "OPERATOR", "READ_ONLY", "ROLES", "TokenBook", "create_app"]
