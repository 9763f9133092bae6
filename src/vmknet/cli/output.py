"""How vmknet commands print: rich tables on a terminal, plain aligned text otherwise.

CI logs, pipes and `CliRunner` get clean ASCII columns (esxcli's style: a
header, a dashed rule, two spaces between columns) with no colour codes or
box-drawing characters; a terminal gets a rich table with colours.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import click
from rich.console import Console
from rich.table import Table

SEVERITY_STYLE = {"error": "bold red", "warning": "yellow", "info": "cyan"}

RowStyle = Callable[[Sequence[str]], str | None]


def console(stderr: bool = False) -> Console:
    """A console on the current stdout/stderr (CliRunner swaps them per invocation)."""
    return Console(file=sys.stderr if stderr else sys.stdout, highlight=False, soft_wrap=True)


def is_terminal() -> bool:
    return console().is_terminal


def table(columns: Sequence[str], rows: Iterable[Sequence[object]], *,
          title: str | None = None, row_style: RowStyle | None = None) -> None:
    """Print `rows` under `columns`; `row_style` colours a row on a terminal only."""
    text_rows = [[_cell(c) for c in row] for row in rows]
    out = console()
    if not out.is_terminal:
        click.echo(plain_table(columns, text_rows, title=title))
        return
    grid = Table(title=title, title_justify="left", header_style="bold")
    for name in columns:
        grid.add_column(name, overflow="fold")
    for row in text_rows:
        grid.add_row(*row, style=row_style(row) if row_style else None)
    out.print(grid)


def plain_table(columns: Sequence[str], rows: Sequence[Sequence[str]], *,
                title: str | None = None) -> str:
    """esxcli-style columns: header, dashes, values; the last column is not padded."""
    widths = [max([len(c), *(len(r[i]) for r in rows)]) for i, c in enumerate(columns)]
    lines = [title] if title else []
    for cells in [list(columns), ["-" * w for w in widths], *rows]:
        padded = [cell.ljust(w) for cell, w in zip(cells[:-1], widths[:-1], strict=True)]
        lines.append("  ".join([*padded, cells[-1]]).rstrip())
    return "\n".join(lines)


def severity_style(row: Sequence[str]) -> str | None:
    """Row colour of a lint finding (its first cell is the severity)."""
    return SEVERITY_STYLE.get(row[0])


def say(message: str, style: str | None = None) -> None:
    """One line of prose; coloured on a terminal only."""
    out = console()
    if out.is_terminal and style:
        out.print(message, style=style, markup=False)
    else:
        click.echo(message)


def warn(message: str) -> None:
    click.echo(message, err=True)


def emit_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, sort_keys=False, default=str))


def _cell(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, list | tuple):
        return ", ".join(str(v) for v in value) or "-"
    return str(value)
