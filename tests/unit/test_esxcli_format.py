"""`esxcli --formatter=csv|keyvalue|xml`: ESXi's machine shapes, on real commands and any values.

The shapes follow published ESXi output (docs/cli.md names the pages):
csv header `ActiveClients,Name,VLANID,VirtualSwitch,`, keyvalue
`structure[0].VirtualSwitch.Uplinks.string[0].string=vmnic0`, xml
`<output xmlns=...><root><list type="structure"><structure typeName="Nic">`.
Addresses come from 198.18.0.0/15 and 2001:db8::/32 only.
"""

from __future__ import annotations

import csv
import io
import xml.etree.ElementTree as ET
from functools import partial
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from hypothesis import given
from hypothesis import strategies as st
from test_cli_esxcli import JSON_COMMANDS

from vmknet.cli.context import AppContext
from vmknet.cli.esxcli import esxcli
from vmknet.cli.esxcli.formatters import NAMESPACE, Row, to_csv, to_keyvalue, to_xml
from vmknet.inventory import Inventory
from vmknet.ops import host as host_ops

NS = {"e": NAMESPACE}


@pytest.fixture
def store(tmp_path: Path) -> Path:
    path = tmp_path / "inv.db"
    Inventory.open(path).run(partial(host_ops.host_add, name="esx01"))
    return path


def run(store: Path, *words: str, formatter: str | None = None) -> Result:
    head = ["-H", "esx01"] + ([f"--formatter={formatter}"] if formatter is not None else [])
    return CliRunner().invoke(esxcli, [*head, *words], obj=AppContext(store_path=store))


def out(store: Path, formatter: str, *words: str) -> str:
    result = run(store, *words, formatter=formatter)
    assert result.exit_code == 0, (words, result.stderr)
    return result.stdout


def ok(store: Path, *words: str) -> None:
    assert run(store, *words).exit_code == 0, words


def with_vswitch1(store: Path) -> None:
    ok(store, "network", "vswitch", "standard", "add", "-v", "vSwitch1")
    ok(store, "network", "vswitch", "standard", "portgroup", "add", "-p", "vMotion (A)",
       "-v", "vSwitch1")
    ok(store, "network", "vswitch", "standard", "portgroup", "set", "-p", "vMotion (A)",
       "--vlan-id", "20")


def parse_csv(text: str) -> list[dict[str, str]]:
    rows = list(csv.reader(io.StringIO(text, newline="")))
    header = rows[0]
    assert header[-1] == "", "every ESXi csv line ends with a comma"
    assert all(row[-1] == "" for row in rows[1:])
    return [dict(zip(header[:-1], row[:-1], strict=True)) for row in rows[1:]]


def xml_structures(text: str) -> list[dict[str, object]]:
    """Each <structure> as {field: text or [texts]}; checks the ESXi envelope on the way."""
    root = ET.fromstring(text)
    assert root.tag == f"{{{NAMESPACE}}}output"
    (body,) = list(root)
    assert body.tag == f"{{{NAMESPACE}}}root"
    found: list[dict[str, object]] = []
    for structure in body.iter(f"{{{NAMESPACE}}}structure"):
        fields: dict[str, object] = {}
        for field in structure.findall("e:field", NS):
            (value,) = list(field)
            kind = value.tag.split("}")[1]
            fields[field.attrib["name"]] = ([item.text or "" for item in value]
                                            if kind == "list" else (kind, value.text or ""))
        found.append(fields)
    return found


# -- csv ------------------------------------------------------------------------------------


def test_csv_portgroup_list_has_esxis_header(store: Path) -> None:
    with_vswitch1(store)
    text = out(store, "csv", "network", "vswitch", "standard", "portgroup", "list")
    assert text.splitlines()[0] == "ActiveClients,Name,VLANID,VirtualSwitch,"
    assert text.splitlines()[1] == "1,Management Network,0,vSwitch0,"
    rows = parse_csv(text)
    assert rows[1] == {"ActiveClients": "0", "Name": "vMotion (A)", "VLANID": "20",
                       "VirtualSwitch": "vSwitch1"}


def test_csv_list_field_is_quoted_items(store: Path) -> None:
    ok(store, "network", "vswitch", "standard", "portgroup", "add", "-p", "VM Network",
       "-v", "vSwitch0")
    text = out(store, "csv", "network", "vswitch", "standard", "list")
    assert '"Management Network,VM Network"' in text
    assert parse_csv(text)[0]["Portgroups"] == "Management Network,VM Network"


def test_csv_nic_list_sorted_fields_and_values(store: Path) -> None:
    rows = parse_csv(out(store, "csv", "network", "nic", "list"))
    assert list(rows[0]) == ["AdminStatus", "Description", "Driver", "Duplex", "LinkStatus",
                             "MACAddress", "MTU", "Name", "PCIDevice", "Speed"]
    assert [r["Name"] for r in rows] == ["vmnic0", "vmnic1", "vmnic2", "vmnic3"]
    assert rows[0]["MTU"] == "1500" and rows[0]["PCIDevice"] == "0000:0b:00.0"


def test_csv_ipv4_get_booleans_are_lowercase(store: Path) -> None:
    ok(store, "network", "ip", "interface", "ipv4", "set", "-i", "vmk0", "-t", "static",
       "-I", "198.18.0.11", "-N", "255.255.255.0")
    (row,) = parse_csv(out(store, "csv", "network", "ip", "interface", "ipv4", "get"))
    assert row == {"AddressType": "STATIC", "DHCPDNS": "false", "Gateway": "0.0.0.0",
                   "IPv4Address": "198.18.0.11", "IPv4Broadcast": "198.18.0.255",
                   "IPv4Netmask": "255.255.255.0", "Name": "vmk0"}


def test_csv_empty_list_prints_nothing(store: Path) -> None:
    assert out(store, "csv", "iscsi", "adapter", "list") == ""


# -- keyvalue -------------------------------------------------------------------------------


def test_keyvalue_interface_list_lines(store: Path) -> None:
    lines = out(store, "keyvalue", "network", "ip", "interface", "list").splitlines()
    assert "structure[0].NetworkInterface.Name.string=vmk0" in lines
    assert "structure[0].NetworkInterface.Enabled.boolean=true" in lines
    assert "structure[0].NetworkInterface.MTU.integer=1500" in lines
    assert "structure[0].NetworkInterface.VDSConnection.integer=-1" in lines
    keys = [line.split("=", 1)[0] for line in lines]
    assert keys == sorted(keys), "fields are listed sorted by name, as ESXi does"


def test_keyvalue_vswitch_lists_and_empty_list(store: Path) -> None:
    with_vswitch1(store)
    lines = out(store, "keyvalue", "network", "vswitch", "standard", "list").splitlines()
    assert "structure[0].VirtualSwitch.Uplinks.string[0].string=vmnic0" in lines
    assert "structure[0].VirtualSwitch.BeaconRequiredBy.string[] = " in lines
    assert "structure[1].VirtualSwitch.Uplinks.string[] = " in lines
    assert "structure[1].VirtualSwitch.Portgroups.string[0].string=vMotion (A)" in lines


def test_keyvalue_get_is_one_structure_without_index(store: Path) -> None:
    lines = out(store, "keyvalue", "network", "ip", "netstack", "get", "-N",
                "defaultTcpipStack").splitlines()
    assert "NetstackInstance.Key.string=defaultTcpipStack" in lines
    assert "NetstackInstance.MaxConnections.integer=11000" in lines
    assert not any(line.startswith("structure[") for line in lines)


def test_scalar_get_in_every_formatter(store: Path) -> None:
    assert out(store, "keyvalue", "iscsi", "software", "get") == "boolean=false\n"
    assert out(store, "csv", "iscsi", "software", "get") == "false,\n"
    root = ET.fromstring(out(store, "xml", "iscsi", "software", "get"))
    assert root.find("e:root/e:boolean", NS) is not None
    assert root.findtext("e:root/e:boolean", namespaces=NS) == "false"


# -- xml ------------------------------------------------------------------------------------


def test_xml_nic_list_envelope_types_and_values(store: Path) -> None:
    text = out(store, "xml", "network", "nic", "list")
    root = ET.fromstring(text)
    assert root.find("e:root/e:list", NS).attrib == {"type": "structure"}  # type: ignore[union-attr]
    structures = root.findall("e:root/e:list/e:structure", NS)
    assert [s.attrib["typeName"] for s in structures] == ["Nic"] * 4
    first = xml_structures(text)[0]
    assert first["Name"] == ("string", "vmnic0")
    assert first["MTU"] == ("integer", "1500")
    assert first["Speed"] == ("integer", "10000")


def test_xml_vswitch_string_lists(store: Path) -> None:
    with_vswitch1(store)
    switches = xml_structures(out(store, "xml", "network", "vswitch", "standard", "list"))
    assert switches[0]["Uplinks"] == ["vmnic0"]
    assert switches[1]["Portgroups"] == ["vMotion (A)"]
    assert switches[1]["Uplinks"] == [] and switches[0]["BeaconEnabled"] == ("boolean", "false")


def test_xml_get_has_its_structure_under_root(store: Path) -> None:
    text = out(store, "xml", "network", "vswitch", "standard", "policy", "failover", "get",
               "-v", "vSwitch0")
    root = ET.fromstring(text)
    assert root.find("e:root/e:list", NS) is None
    (structure,) = root.findall("e:root/e:structure", NS)
    assert structure.attrib["typeName"] == "FailoverPolicy"
    assert xml_structures(text)[0]["ActiveAdapters"] == ["vmnic0"]


def test_xml_empty_list(store: Path) -> None:
    assert xml_structures(out(store, "xml", "iscsi", "adapter", "list")) == []


# -- every list/get, every formatter ----------------------------------------------------------


@pytest.mark.parametrize("words", JSON_COMMANDS, ids=lambda w: " ".join(w))
@pytest.mark.parametrize("formatter", ["csv", "keyvalue", "xml"])
def test_every_list_and_get_takes_every_formatter(store: Path, formatter: str,
                                                  words: tuple[str, ...]) -> None:
    text = out(store, formatter, *words)
    if formatter == "xml":
        ET.fromstring(text)
    elif formatter == "csv" and text:
        if words != ("iscsi", "software", "get"):
            parse_csv(text)
    elif formatter == "keyvalue":
        assert all("=" in line for line in text.splitlines())


def test_formatter_json_and_json_flag_agree(store: Path) -> None:
    words = ("network", "ip", "interface", "list")
    assert out(store, "json", *words) == run(store, *words, "--json").stdout


@pytest.mark.parametrize("bad", ["yaml", "XML", ""])
def test_unknown_formatter_is_one_line_with_a_code(store: Path, bad: str) -> None:
    result = run(store, "network", "nic", "list", formatter=bad)
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr == (f"Error [InvalidArgument]: Unknown formatter '{bad}': "
                             "use csv, json, keyvalue, xml\n")


# -- any values round-trip ------------------------------------------------------------------

# XML 1.0 has no way to carry C0 controls (but tab, LF, CR) or lone surrogates; names and
# descriptions never hold them. They are checked separately below.
xml_text = st.text(st.characters(blacklist_categories=("Cs",),
                                 blacklist_characters=[chr(c) for c in range(32)
                                                       if chr(c) not in "\t\n\r"]
                                 + ["\ufffe", "\uffff"]))
names = st.lists(st.sampled_from(["Name", "MAC Address", "VLAN ID", "Portgroups", "Uplinks",
                                  "Description"]), min_size=1, max_size=6, unique=True)


@given(names, st.lists(st.lists(st.text(), min_size=6, max_size=6), min_size=1, max_size=4))
def test_csv_round_trips_any_text(fields: list[str], values: list[list[str]]) -> None:
    rows: list[Row] = [
        dict(zip(fields, row, strict=False)) for row in values]
    parsed = parse_csv(to_csv(rows))
    assert parsed == [{k.replace(" ", ""): v for k, v in row.items()} for row in rows]


@given(names, st.lists(st.tuples(xml_text, st.lists(xml_text, max_size=3)), min_size=1,
                       max_size=3),
       st.booleans())
def test_xml_round_trips_any_text(fields: list[str], values: list[tuple[str, list[str]]],
                                  single: bool) -> None:
    rows: list[Row] = []
    for text, items in values:
        row: Row = {
            f: (items if f in ("Portgroups", "Uplinks") else text) for f in fields}
        rows.append(row)
    if single:
        rows = rows[:1]
    parsed = xml_structures(to_xml("Fuzz & <Type>", rows, single))
    assert parsed == [{k.replace(" ", ""): (v if isinstance(v, list) else ("string", v))
                       for k, v in row.items()} for row in rows]


@given(st.lists(st.sampled_from(["\x00", "\x08", "\x0b", "\x1f", "\ud800", "\uffff"]),
                min_size=1), st.text(alphabet="ab<&\"'"))
def test_xml_replaces_what_xml_cannot_carry(bad: list[str], good: str) -> None:
    text = good + "".join(bad)
    (parsed,) = xml_structures(to_xml("T", [{"Name": text}], single=False))
    assert parsed["Name"] == ("string", good + "\ufffd" * len(bad))


@given(st.lists(st.text(alphabet=st.characters(blacklist_characters="\n\r")), min_size=1,
                max_size=4), st.integers(), st.booleans())
def test_keyvalue_lines_name_each_value(items: list[str], number: int, flag: bool) -> None:
    text = to_keyvalue("T", [{"Uplinks": items, "MTU": number, "Enabled": flag}], single=False)
    lines = text.split("\n")[:-1]  # not splitlines(): values may hold \x1c-\x1e, \x85, ...
    assert lines[0] == f"structure[0].T.Enabled.boolean={'true' if flag else 'false'}"
    assert lines[1] == f"structure[0].T.MTU.integer={number}"
    assert lines[2:] == [f"structure[0].T.Uplinks.string[{j}].string={item}"
                         for j, item in enumerate(items)]
