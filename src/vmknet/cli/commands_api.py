"""`vmknet api token create|list|revoke`, `vmknet api url`: the REST API's tokens and address.

The tokens live hashed in the lab's controller folder (`vmknet.api.tokens`);
the controller re-reads the file, so a new or revoked token counts at once.
"""

from __future__ import annotations

import json

import click

from ..api import files
from ..api.tokens import ROLES, TokenBook
from ..errors import NotFound
from .context import AppContext, pass_app, reported
from .output import table

LAB_OPTION = click.option("--lab", "lab", default=None,
                          help="The lab whose controller serves the API [default: the lab the "
                               "store is bound to].")


def _lab(app: AppContext, lab: str | None) -> str:
    if lab is not None:
        from ..lab.binding import Lab

        return Lab.named(lab).name  # the name rules of a lab (no path tricks)
    from ..lab.binding import require_lab

    return require_lab(app.inventory).name


def _book(app: AppContext, lab: str | None) -> TokenBook:
    return TokenBook(files.tokens_file(_lab(app, lab)))


@click.group("api")
def api() -> None:
    """The controller's REST API: bearer tokens and the URL it is served on."""


@api.group("token")
def token() -> None:
    """Bearer tokens of the REST API (roles: read-only, operator, admin)."""


@token.command("create")
@click.option("--role", type=click.Choice(ROLES), required=True,
              help="read-only: GETs; operator: also plan/apply; admin: also token management.")
@click.option("--name", default="", help="A label to find the token by in 'list'.")
@LAB_OPTION
@pass_app
def create(app: AppContext, role: str, name: str, lab: str | None) -> None:
    """Create a token and print it, once: only its SHA-256 is stored."""
    with reported():
        secret, entry = _book(app, lab).create(role, name)
    click.echo(secret)
    click.echo(f"Token {entry.id} ({entry.name}, {entry.role}): shown only now; use it as "
               "'Authorization: Bearer <token>'", err=True)


@token.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@LAB_OPTION
@pass_app
def list_tokens(app: AppContext, as_json: bool, lab: str | None) -> None:
    """The tokens: id, name, role, creation time (never the secret)."""
    with reported():
        entries = _book(app, lab).entries()
    if as_json:
        click.echo(json.dumps([e.public() for e in entries], indent=2))
        return
    table(["id", "name", "role", "created"],
          [[e.id, e.name, e.role, _when(e.created)] for e in entries])


def _when(stamp: float) -> str:
    import time

    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(stamp))


@token.command("revoke")
@click.argument("token_id")
@LAB_OPTION
@pass_app
def revoke(app: AppContext, token_id: str, lab: str | None) -> None:
    """Revoke the token TOKEN_ID (from 'list'): the API refuses it from now on."""
    with reported():
        entry = _book(app, lab).revoke(token_id)
    click.echo(f"Revoked token {entry.id} ({entry.name}, {entry.role})")


@api.command("url")
@LAB_OPTION
@pass_app
def url(app: AppContext, lab: str | None) -> None:
    """The URL of the lab's API on 127.0.0.1 (plain HTTP, loopback only)."""
    with reported():
        name = _lab(app, lab)
        served = files.served_url(name)
        if served is None:
            raise NotFound(f"The controller of lab {name} serves no REST API now: run "
                           "'vmknet lab up'")
    click.echo(served)
