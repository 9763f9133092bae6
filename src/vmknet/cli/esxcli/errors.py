"""esxcli's error lines: ESXi's published wording where scripts match on it.

vmknet's operations say what is wrong in their own words (the same for the
REST API and every `vmknet` verb). Where ESXi's own text for the same refusal
is published, esxcli prints that text word for word instead, because scripts
written against real hosts grep for it (docs/cli.md names the sources); every
other error keeps vmknet's message. Either way it is one line on stderr with
the exit status of the error's code.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager

import click

from ...errors import AlreadyExists, NotFound, VmknetError, exit_code

# (error class, vmknet's message, ESXi's message as a re.sub template)
ESXI_WORDING: tuple[tuple[type[VmknetError], re.Pattern[str], str], ...] = (
    (AlreadyExists, re.compile(r"A vswitch with the name \S+ already exists"),
     "A portset with this name already exists"),
    (AlreadyExists, re.compile(r"Uplink (\S+) is already on \S+"), r"Uplink already exists: \1"),
    (NotFound, re.compile(r"Uplink (\S+) is not on \S+"), r"No such uplink: \1"),
    (AlreadyExists, re.compile(r"Netstack instance '(.+)' is already found"),
     r"Netstack instance '\1' is already found in kernel"),
    (AlreadyExists, re.compile(r"Vmknic \S+ is already tagged with (\S+)"),
     r"Vmknic is already tagged with \1"),
    (NotFound, re.compile(r"Vmknic \S+ is not tagged with (\S+)"), r"Vmknic is not tagged with \1"),
)


def esxi_message(err: VmknetError) -> str:
    """The line esxcli prints for `err`: ESXi's words where published, else vmknet's."""
    for kind, pattern, template in ESXI_WORDING:
        if isinstance(err, kind):
            m = pattern.fullmatch(err.message)
            if m is not None:
                return m.expand(template)
    return err.message


@contextmanager
def esxcli_reported() -> Iterator[None]:
    """Turn a VmknetError into its esxcli line on stderr and the exit status of its code."""
    try:
        yield
    except VmknetError as err:
        click.echo(esxi_message(err), err=True)
        sys.exit(exit_code(err))
