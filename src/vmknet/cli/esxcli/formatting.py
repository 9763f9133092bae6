"""How esxcli prints: "ESXi tables", "ESXi blocks", and `--json` for both.

    Name  Virtual Switch  Active Clients  VLAN ID        <- esxi_table: columns sized to
    ----  --------------  --------------  -------           content, dashes under each header,
    VM    vSwitch0                     0        0           numbers and booleans right-aligned

    vmk0                                                 <- esxi_blocks: a title line, then
       Name: vmk0                                           "   Key: value" lines
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence

import click

Cell = str | int | bool | None | list[str]
Record = dict[str, Cell]

json_option = click.option("--json", "as_json", is_flag=True,
                           help="Print a JSON list of objects with the same field names.")


def cell_text(value: Cell) -> str:
    """ESXi's rendering of one value: lowercase booleans, comma-separated lists."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ", ".join(value)
    return str(value)


def _right_aligned(values: Sequence[Cell]) -> bool:
    present = [v for v in values if v is not None]
    return bool(present) and all(isinstance(v, int) for v in present)  # bool is an int


def esxi_table(columns: Sequence[str], rows: Sequence[Record]) -> str:
    """Header, dashed underline, one line per row; two spaces between columns."""
    texts = [[cell_text(row.get(c)) for c in columns] for row in rows]
    widths = [max([len(c), *(len(t[i]) for t in texts)]) for i, c in enumerate(columns)]
    right = [_right_aligned([row.get(c) for row in rows]) for c in columns]
    lines: list[str] = []
    for cells, aligned in ((list(columns), [False] * len(columns)),
                           (["-" * w for w in widths], [False] * len(columns)),
                           *((t, right) for t in texts)):
        padded = [cell.rjust(w) if r else cell.ljust(w)
                  for cell, w, r in zip(cells, widths, aligned, strict=True)]
        lines.append("  ".join(padded).rstrip())
    return "\n".join(lines)


def esxi_blocks(rows: Sequence[Record], title: Callable[[Record], str | None]) -> str:
    """One block per row: its title (if any) flush left, then the fields indented by three."""
    blocks: list[str] = []
    for row in rows:
        head = title(row)
        lines = [head] if head is not None else []
        lines.extend(f"   {key}: {cell_text(value)}".rstrip() for key, value in row.items())
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)


def emit_json(rows: Sequence[Record]) -> None:
    click.echo(json.dumps(list(rows), indent=2))


FORMATTER_KEY = "vmknet.esxcli.formatter"


def wants_json(as_json: bool) -> bool:
    """`--json` on the command, or `esxcli --formatter=json` before the namespace words."""
    ctx = click.get_current_context(silent=True)
    return as_json or (ctx is not None and ctx.meta.get(FORMATTER_KEY) == "json")


def show_table(columns: Sequence[str], rows: Sequence[Record], as_json: bool) -> None:
    if wants_json(as_json):
        emit_json([{c: row.get(c) for c in columns} for row in rows])
    else:
        click.echo(esxi_table(columns, rows))


def show_blocks(rows: Sequence[Record], as_json: bool,
                title: str | Callable[[Record], str | None] | None = "Name") -> None:
    """Blocks titled by the field `title` (a name), by a function, or untitled (None)."""
    if wants_json(as_json):
        emit_json(rows)
        return
    if not rows:
        return
    if title is None:
        click.echo(esxi_blocks(rows, lambda _row: None))
    elif isinstance(title, str):
        key = title
        click.echo(esxi_blocks(rows, lambda row: cell_text(row.get(key))))
    else:
        click.echo(esxi_blocks(rows, title))
