"""ESXi's machine formatters: `esxcli --formatter=csv|keyvalue|xml ...`, as ESXi prints them.

Every list/get of vmknet's esxcli hands its records here (through
formatting.py), so the three shapes live in one place. What ESXi does, and
where it was seen (docs/cli.md names the pages):

- Field names are the display names without spaces ("MAC Address" ->
  ``MACAddress``, "VLAN ID" -> ``VLANID``), and all three formatters list a
  structure's fields sorted by that name (ASCII: "DPUId" before "Description").
- csv: a header of the field names, then one line per structure; every line
  ends with a comma (``ActiveClients,Name,VLANID,VirtualSwitch,``).
- keyvalue: ``structure[i].Type.Field.type=value`` per field of a list,
  ``Type.Field.type=value`` for a get; a string list is
  ``Field.string[j].string=value`` per item and ``Field.string[] = `` when
  empty (ESXi's own spacing).
- xml: ``<output xmlns=...><root><list type="structure"><structure
  typeName="Type"><field name="Field"><string>...`` with three-space indents;
  a get has its ``<structure>`` straight under ``<root>``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from xml.sax.saxutils import escape

Value = str | int | bool | None | list[str]
Row = dict[str, Value]

NAMESPACE = "http://www.vmware.com/Products/ESX/5.0/esxcli"
MACHINE_FORMATTERS = ("csv", "keyvalue", "xml")
# XML 1.0 cannot carry these even as character references; they become U+FFFD.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def field_name(display: str) -> str:
    """ESXi's field name for a display name: the same words without spaces."""
    return display.replace(" ", "")


def value_type(value: Value) -> str:
    """ESXi's type word: boolean, integer, string; a list is a list of strings."""
    if isinstance(value, bool):  # before int: bool is an int
        return "boolean"
    if isinstance(value, int):
        return "integer"
    return "string"


def scalar_text(value: Value) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _fields(row: Row) -> list[tuple[str, Value]]:
    return sorted(((field_name(k), v) for k, v in row.items()), key=lambda kv: kv[0])


# ------------------------------------------------------------------------------------ csv


def csv_field(text: str) -> str:
    """RFC 4180 quoting; done here because the csv module leaves a lone CR unquoted when
    lines end in LF, and a reader then splits the record there."""
    if any(c in text for c in ',"\r\n'):
        return '"' + text.replace('"', '""') + '"'
    return text


def to_csv(rows: Sequence[Row]) -> str:
    """Header and rows, each line ending in a comma; a list is its items joined by ','."""
    if not rows:
        return ""
    names = sorted({field_name(k) for row in rows for k in row})
    lines = ["".join(f"{csv_field(n)}," for n in names)]
    for row in rows:
        by_name = dict(_fields(row))
        cells = [",".join(v) if isinstance(v := by_name.get(n), list) else scalar_text(v)
                 for n in names]
        lines.append("".join(f"{csv_field(c)}," for c in cells))
    return "".join(line + "\n" for line in lines)


# ------------------------------------------------------------------------------- keyvalue


def to_keyvalue(type_name: str, rows: Sequence[Row], single: bool) -> str:
    lines: list[str] = []
    for index, row in enumerate(rows):
        prefix = f"{type_name}." if single else f"structure[{index}].{type_name}."
        for name, value in _fields(row):
            if isinstance(value, list):
                if not value:
                    lines.append(f"{prefix}{name}.string[] = ")
                lines.extend(f"{prefix}{name}.string[{j}].string={item}"
                             for j, item in enumerate(value))
            else:
                lines.append(f"{prefix}{name}.{value_type(value)}={scalar_text(value)}")
    return "".join(line + "\n" for line in lines)


# ------------------------------------------------------------------------------------ xml


def xml_text(text: str) -> str:
    """Element or attribute text: &, <, >, " escaped; CR kept as &#13; (parsers fold a raw CR)."""
    return escape(_NOT_XML.sub("\ufffd", text), {'"': "&quot;", "\r": "&#13;"})


def _xml_value(value: Value, indent: str) -> list[str]:
    if isinstance(value, list):
        inner = indent + "   "
        return [f'{indent}<list type="string">',
                *(f"{inner}<string>{xml_text(item)}</string>" for item in value),
                f"{indent}</list>"]
    kind = value_type(value)
    return [f"{indent}<{kind}>{xml_text(scalar_text(value))}</{kind}>"]


def _xml_structure(type_name: str, row: Row, indent: str) -> list[str]:
    lines = [f'{indent}<structure typeName="{xml_text(type_name)}">']
    for name, value in _fields(row):
        lines.append(f'{indent}   <field name="{xml_text(name)}">')
        lines.extend(_xml_value(value, indent + "      "))
        lines.append(f"{indent}   </field>")
    lines.append(f"{indent}</structure>")
    return lines


def _xml_document(body: list[str]) -> str:
    return "\n".join(['<?xml version="1.0" ?>', f'<output xmlns="{NAMESPACE}">', "<root>",
                      *body, "</root>", "</output>"]) + "\n"


def to_xml(type_name: str, rows: Sequence[Row], single: bool) -> str:
    if single and rows:
        return _xml_document(_xml_structure(type_name, rows[0], "   "))
    body = ['   <list type="structure">']
    for row in rows:
        body.extend(_xml_structure(type_name, row, "      "))
    body.append("   </list>")
    return _xml_document(body)


# -------------------------------------------------------------------------------- dispatch


def render(formatter: str, type_name: str, rows: Sequence[Row], single: bool) -> str:
    """The text of `rows` (one structure when `single`) in one of MACHINE_FORMATTERS."""
    if formatter == "csv":
        return to_csv(rows)
    if formatter == "keyvalue":
        return to_keyvalue(type_name, rows, single)
    if formatter == "xml":
        return to_xml(type_name, rows, single)
    raise ValueError(f"not a machine formatter: {formatter}")


def render_value(formatter: str, value: Value) -> str:
    """A command whose result is one value (`iscsi software get`): not a structure."""
    kind = value_type(value)
    text = scalar_text(value)
    if formatter == "csv":
        return f"{text},\n"
    if formatter == "keyvalue":
        return f"{kind}={text}\n"
    return _xml_document([f"   <{kind}>{xml_text(text)}</{kind}>"])
