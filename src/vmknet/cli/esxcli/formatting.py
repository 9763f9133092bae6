"""How esxcli prints: "ESXi tables", "ESXi blocks", `--json`, and `--formatter=csv|keyvalue|xml`.

    Name  Virtual Switch  Active Clients  VLAN ID        <- esxi_table: columns sized to
    ----  --------------  --------------  -------           content, dashes under each header,
    VM    vSwitch0                     0        0           numbers and booleans right-aligned

    vmk0                                                 <- esxi_blocks: a title line, then
       Name: vmk0                                           "   Key: value" lines

Every list/get goes through show_table/show_blocks/show_value with its ESXi
structure type name (NetworkInterface, Nic, ...); `esxcli --formatter=F`
(before the namespace words) picks the shape, rendered by formatters.py.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence

import click

from .formatters import MACHINE_FORMATTERS, render, render_value

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
FORMATTERS = ("csv", "json", "keyvalue", "xml")


def formatter(as_json: bool) -> str | None:
    """`--json` on the command, else `esxcli --formatter=F` before the namespace words."""
    if as_json:
        return "json"
    ctx = click.get_current_context(silent=True)
    chosen = ctx.meta.get(FORMATTER_KEY) if ctx is not None else None
    return chosen if isinstance(chosen, str) else None


def wants_json(as_json: bool) -> bool:
    return formatter(as_json) == "json"


def _machine(as_json: bool, type_name: str, rows: Sequence[Record], single: bool) -> bool:
    """Print `rows` in a machine formatter if one was asked for; True when printed."""
    chosen = formatter(as_json)
    if chosen == "json":
        emit_json(rows)
        return True
    if chosen in MACHINE_FORMATTERS:
        text = render(chosen, type_name, rows, single)
        if text:
            click.echo(text, nl=False)
        return True
    return False


def show_table(columns: Sequence[str], rows: Sequence[Record], as_json: bool, *,
               type_name: str) -> None:
    """A list printed as an ESXi table (or by the chosen formatter)."""
    ordered = [{c: row.get(c) for c in columns} for row in rows]
    if not _machine(as_json, type_name, ordered, single=False):
        click.echo(esxi_table(columns, rows))


def show_blocks(rows: Sequence[Record], as_json: bool, *, type_name: str,
                title: str | Callable[[Record], str | None] | None = "Name",
                single: bool = False) -> None:
    """Blocks titled by the field `title` (a name), by a function, or untitled (None).

    `single` marks a get: one structure, not a list of them, in keyvalue and xml.
    """
    if _machine(as_json, type_name, rows, single):
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


def show_value(value: bool, as_json: bool, *, json_field: str) -> None:
    """A get whose result is one value (`iscsi software get` prints `true`)."""
    chosen = formatter(as_json)
    if chosen == "json":
        emit_json([{json_field: value}])
    elif chosen in MACHINE_FORMATTERS:
        click.echo(render_value(chosen, value), nl=False)
    else:
        click.echo(cell_text(value))
