"""`vmknet host join-token HOST`: let a real host's agent join the controller (docs/deploy.md).

The controller makes a one-time token bound to HOST (24 h, kept only as a
hash) and names its CA's fingerprint; this prints both and the exact
`vmknet-agent join` command to run, as root, on that host.
"""

from __future__ import annotations

import json
import shlex

import click

from ..errors import NotFound
from .context import AppContext, pass_app, reported


def join_command(controller: str, token: str, fingerprint: str, host: str) -> str:
    """Shell-quoted, each value glued to its option: a value starting with '-' stays one."""
    return shlex.join(["vmknet-agent", "join", f"--controller={controller}", f"--token={token}",
                       f"--ca-fingerprint={fingerprint}", f"--host={host}"])


@click.command("join-token")
@click.argument("host_name", metavar="HOST")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_app
def join_token(app: AppContext, host_name: str, as_json: bool) -> None:
    """A one-time token for HOST's agent to join the controller, and the command to run there."""
    from ..controller.client import ControllerClient
    from ..controller.joins import TOKEN_TTL  # loads cryptography: only for this command
    from ..lab.binding import require_lab

    with reported():
        inv = app.inventory
        lab = require_lab(inv).name
        controller = inv.read().physical.controller
        if controller is None:
            raise NotFound("The inventory has no controller (physical.controller)")
        grant = ControllerClient(lab).call("join-token", {"host": host_name})
    address = str(controller.address.ip)  # the agent's default port is the controller's
    token, fingerprint = str(grant["token"]), str(grant["caFingerprint"])
    command = join_command(address, token, fingerprint, host_name)
    if as_json:
        click.echo(json.dumps({"host": host_name, "controller": address, "token": token,
                               "caFingerprint": fingerprint, "expiresIn": TOKEN_TTL,
                               "command": command}, indent=2))
        return
    click.echo(f"Join token for {host_name} (one use, valid {TOKEN_TTL / 3600:g} h): {token}")
    click.echo(f"Controller CA fingerprint (sha256): {fingerprint}")
    click.echo(f"On {host_name}, as root:")
    click.echo(f"  {command}")
