"""What every CLI command shares: the store it works on and how errors are reported."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import click

from ..errors import VmknetError, exit_code
from ..inventory import Inventory


@dataclass
class AppContext:
    """Set by the top-level `--store` option (or VMKNET_STORE); one Inventory per command."""

    store_path: Path | None = None
    _inventory: Inventory | None = None

    @property
    def inventory(self) -> Inventory:
        if self._inventory is None:
            self._inventory = Inventory.open(self.store_path)
        return self._inventory


pass_app = click.make_pass_decorator(AppContext, ensure=True)


@contextmanager
def reported(esxcli_style: bool = False) -> Iterator[None]:
    """Turn a VmknetError into one line on stderr and the exit status of its code.

    esxcli prints the bare message as ESXi does; vmknet commands prefix the
    code so a rule id can be looked up in SPEC.md.
    """
    try:
        yield
    except VmknetError as err:
        line = err.message if esxcli_style else f"Error [{err.code}]: {err.message}"
        click.echo(line, err=True)
        sys.exit(exit_code(err))
