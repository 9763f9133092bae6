"""The `vmknet` command: desired-state verbs, object verbs, and esxcli under one roof.

    vmknet [--store PATH] validate|plan|apply|show|lint|resolve|events ...
    vmknet host|cluster|dvs ...
    vmknet esxcli -H HOST network ip interface list

Every command is a thin adapter over `vmknet.inventory.Inventory` (via
`AppContext`); errors leave through `reported()` with the exit status of
their code (`vmknet.errors.EXIT_CODES`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from . import (
    commands_api,
    commands_cluster,
    commands_ft,  # noqa: F401 - adds `ft` to the `vm` group
    commands_join,
    commands_lab,
    commands_mgmt,
    commands_objects,
    commands_provision,  # noqa: F401 - adds its commands to the `vm` group
    commands_replication,
    commands_resolve,
    commands_state,
    commands_traffic,
    commands_vm,
    commands_vsan,
)
from .context import AppContext, one_line_usage, reported
from .esxcli import esxcli


class _Main(click.Group):
    """The top level: whatever a command lets through still ends as one error line."""

    def make_context(self, info_name: str | None, args: list[str],
                     parent: click.Context | None = None, **extra: Any) -> click.Context:
        try:
            return super().make_context(info_name, args, parent=parent, **extra)
        except click.UsageError as err:
            raise one_line_usage(err) from None

    def invoke(self, ctx: click.Context) -> object:
        try:
            with reported():
                return super().invoke(ctx)
        except click.UsageError as err:
            raise one_line_usage(err) from None


@click.group(cls=_Main, context_settings={"max_content_width": 100})
@click.option("--store", "store", type=click.Path(dir_okay=False, path_type=Path),
              envvar="VMKNET_STORE", show_envvar=True, default=None,
              help="Inventory store file [default: $XDG_DATA_HOME/vmknet/inventory.db, "
                   "else ~/.local/share/vmknet/inventory.db].")
@click.version_option(package_name="vmknet", prog_name="vmknet")
@click.pass_context
def main(ctx: click.Context, store: Path | None) -> None:
    """vmknet: the VMkernel networking layer (TCP/IP stacks, VMkernel adapters, system traffic)."""
    ctx.obj = AppContext(store_path=store)


for _command in (*commands_state.COMMANDS, commands_resolve.resolve,
                 *commands_objects.COMMANDS):
    main.add_command(_command)
main.add_command(esxcli)
commands_objects.host.add_command(commands_mgmt.host_status)
commands_objects.cluster.add_command(commands_cluster.cluster_status)
commands_objects.host.add_command(commands_join.join_token)
main.add_command(commands_lab.lab)
main.add_command(commands_api.api)
for _command in commands_traffic.COMMANDS:
    main.add_command(_command)
commands_lab.lab.add_command(commands_traffic.check_command)
for _command in (*commands_vm.COMMANDS, *commands_replication.COMMANDS, *commands_vsan.COMMANDS):
    main.add_command(_command)


if __name__ == "__main__":  # pragma: no cover
    main()
