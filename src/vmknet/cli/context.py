"""What every CLI command shares: the store it works on and how errors are reported."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, NoReturn

import click

from ..errors import VmknetError, exit_code, one_line, translate
from ..inventory import Inventory


@dataclass
class AppContext:
    """Set by the top-level `--store` option (or VMKNET_STORE); one Inventory per command."""

    store_path: Path | None = None
    _inventory: Inventory | None = None

    @property
    def inventory(self) -> Inventory:
        if self._inventory is None:
            # A client: a lab whose controller runs is changed by the controller.
            self._inventory = Inventory.open(self.store_path, via_controller=True)
        return self._inventory


pass_app = click.make_pass_decorator(AppContext, ensure=True)


# click's own control flow (usage errors, --help, a declined confirm) passes through.
CLICK_FLOW = (click.exceptions.ClickException, click.exceptions.Exit, click.exceptions.Abort)


@contextmanager
def reported(esxcli_style: bool = False) -> Iterator[None]:
    """Turn any error into one line on stderr and the exit status of its code.

    A VmknetError keeps its code; anything else is translated once
    (`vmknet.errors.translate`: NoPermission, NotFound, FileFault, InternalError).
    esxcli prints the bare message as ESXi does; vmknet commands prefix the
    code so a rule id can be looked up in docs/rules.md.
    """
    try:
        yield
    except CLICK_FLOW:
        raise
    except Exception as exc:  # the one place every failure becomes one line
        report(translate(exc), esxcli_style)


def report(err: VmknetError, esxcli_style: bool = False) -> NoReturn:
    message = one_line(err.message, limit=2000)
    click.echo(message if esxcli_style else f"Error [{err.code}]: {message}", err=True)
    sys.exit(exit_code(err))


class UsageLine(click.UsageError):
    """A usage error of a vmknet command as one line, like every other error (exit 2)."""

    def show(self, file: IO[Any] | None = None) -> None:
        click.echo(f"Error [InvalidArgument]: {self.format_message()}", err=True)


# `vmknet` or `vmknet vm` alone prints the help: that is not an error to reformat.
_HELP = getattr(click.exceptions, "NoArgsIsHelpError", ())


def one_line_usage(err: click.UsageError) -> click.UsageError:
    """`err` as a UsageLine; esxcli keeps its own (ESXi's) usage texts."""
    ctx = err.ctx
    if isinstance(err, UsageLine | _HELP) or (ctx and ctx.command_path.split()[1:2] == ["esxcli"]):
        return err
    path = ctx.command_path if ctx else "vmknet"
    text = one_line(f"{path}: {err.format_message()} (see '{path} --help')", limit=2000)
    return UsageLine(text, ctx)
