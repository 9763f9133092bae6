"""A large corpus of malformed files and commands through the real CLI: each is refused
cleanly (issue 8, part 4).

For every input: a non-zero exit, exactly one error line on stderr (`Error [CODE]: ...`
for vmknet commands, ESXi's bare message for esxcli), no traceback, and the store file
byte-identical. The store is a temporary one that no lab is bound to, so nothing here
touches the kernel. Hand-written families (bad names per kind, path traversal, huge sizes,
alias bombs, deep nesting, bad addresses, unknown fields, wrong types, duplicate keys,
missing references, YAML syntax) are joined by hypothesis-generated names, values and
command lines; `test_zz_corpus_size` prints how many inputs were tried.
"""

from __future__ import annotations

import copy
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner, Result
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vmknet.cli.main import main
from vmknet.inventory import Inventory
from vmknet.model import names
from vmknet.state import loads

TRIED: list[str] = []  # every input fed in, for the closing count
MIN_CORPUS = 600

BASE: dict[str, Any] = {
    "clusters": {"cl01": {"ha": True, "hosts": ["esx01", "esx02"]}},
    "distributedSwitches": {"dvs01": {
        "uplinks": ["Uplink 1", "Uplink 2"],
        "hosts": {"esx01": {"Uplink 1": "vmnic2", "Uplink 2": "vmnic3"},
                  "esx02": {"Uplink 1": "vmnic2", "Uplink 2": "vmnic3"}},
        "portgroups": {"vSAN": {"vlan": 50}}}},
    "hosts": {
        f"esx0{i}": {
            "vswitches": {"vSwitch0": {"uplinks": ["vmnic0"], "portgroups": {
                "Management Network": {}, "vMotion": {"vlan": 40}}}},
            "vmknics": {
                "vmk0": {"portgroup": "Management Network", "services": ["management"],
                         "ipv4": {"type": "static", "address": f"198.18.0.1{i}/24"}},
                "vmk1": {"portgroup": "vMotion", "netstack": "vmotion",
                         "ipv4": {"type": "static", "address": f"198.18.4.1{i}/24"}},
                "vmk2": {"dvs": "dvs01", "dvportgroup": "vSAN", "services": ["vsan"],
                         "ipv4": {"type": "static", "address": f"198.18.5.1{i}/24"}},
            },
            "storage": {"nfs": {"ds1": {"servers": ["198.18.0.200"], "share": "/ds1"}}},
        } for i in (1, 2)
    },
}
BAD_NAMES = ["", "../../escape", ".esx01", "a/b", "..", ".", "a b;rm -rf /", "$(id)", "a\nb",
             "x" * 300, "é", "a\tb", "*", "/etc", "-", "a:b", "ds\\1", "%s%n"]
# Where a name lives in the file: (kind rule, function that renames there).
Doc = dict[str, Any]


def _rename(mapping: dict[str, Any], old: str, new: str) -> None:
    mapping[new] = mapping.pop(old)


def _host0(d: Doc) -> Doc:
    host: Doc = d["hosts"]["esx01"]
    return host


PLACES: dict[str, Callable[[Doc, str], None]] = {
    "host": lambda d, n: _rename(d["hosts"], "esx02", n),
    "vswitch": lambda d, n: _host0(d)["vswitches"].__setitem__(n, {}),
    "portgroup": lambda d, n: _host0(d)["vswitches"]["vSwitch0"]["portgroups"].__setitem__(n, {}),
    "netstack": lambda d, n: _host0(d).__setitem__("netstacks", {n: {}}),
    "vmknic": lambda d, n: _rename(_host0(d)["vmknics"], "vmk1", n),
    "nic": lambda d, n: _host0(d).__setitem__("nics", {"vmnic0": {}, n: {}}),
    "cluster": lambda d, n: _rename(d["clusters"], "cl01", n),
    "dvs": lambda d, n: _rename(d["distributedSwitches"], "dvs01", n),
    "dvportgroup": lambda d, n: d["distributedSwitches"]["dvs01"]["portgroups"].__setitem__(
        n, {}),
    "uplink": lambda d, n: d["distributedSwitches"]["dvs01"]["uplinks"].append(n),
    "datastore": lambda d, n: _host0(d)["storage"]["nfs"].__setitem__(n, {}),
}
KIND_RULE = {"host": names.HOST, "vswitch": names.VSWITCH, "portgroup": names.PORTGROUP,
             "netstack": names.NETSTACK, "vmknic": names.VMKNIC, "nic": names.NIC,
             "cluster": names.CLUSTER, "dvs": names.DVS, "dvportgroup": names.DVPORTGROUP,
             "uplink": names.UPLINK, "datastore": names.DATASTORE}


def base() -> Doc:
    return copy.deepcopy(BASE)


def dump(doc: Doc) -> str:
    return yaml.safe_dump(doc, sort_keys=False, allow_unicode=True)


# ------------------------------------------------------------------ the harness


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A store holding BASE (so references and duplicates have something to meet)."""
    folder = tmp_path_factory.mktemp("corpus")
    path = folder / "inventory.db"
    text = dump(base())
    Inventory.open(path).apply(loads(text))
    return path


@pytest.fixture(scope="module")
def scratch(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("files")


def cli(store: Path, args: list[str], *, esxcli: bool = False, label: str = "") -> Result:
    """Run one malformed input and check that it was refused cleanly."""
    TRIED.append(label or " ".join(args)[:80])
    before = store.read_bytes()
    siblings = sorted(p.name for p in store.parent.iterdir())
    result = CliRunner().invoke(main, ["--store", str(store), *args])
    what = f"{args!r}: exit {result.exit_code}, stderr {result.stderr!r}"
    assert result.exception is None or isinstance(result.exception, SystemExit), (
        what, result.exception)
    assert result.exit_code != 0, what
    assert "Traceback" not in result.output and "Traceback" not in result.stderr, what
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    if esxcli and result.exit_code == 2 and lines and lines[0].startswith("Usage:"):
        # esxcli's usage errors keep click's (ESXi-like) block: exactly one `Error:` line
        lines = [line for line in lines if line.startswith("Error:")]
    assert len(lines) == 1, what
    if not esxcli:
        assert lines[0].startswith("Error ["), what
    assert store.read_bytes() == before, what
    assert sorted(p.name for p in store.parent.iterdir()) == siblings, what
    return result


_serial = iter(range(10**9))


def refuse_file(store: Path, folder: Path, content: str | bytes, label: str) -> Result:
    """`apply --yes FILE` refuses it; validate and plan do too (no traceback, non-zero)."""
    path = folder / f"f{next(_serial)}.yaml"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    result = cli(store, ["apply", "--yes", str(path)], label=f"file {label}")
    for verb in ("validate", "plan"):
        other = CliRunner().invoke(main, ["--store", str(store), verb, str(path)])
        assert other.exit_code != 0 and isinstance(other.exception, SystemExit), (verb, label)
        assert "Traceback" not in other.stderr and other.stderr.startswith("Error ["), (
            verb, label, other.stderr)
    return result


def test_base_document_is_valid() -> None:
    assert Inventory.validate(loads(dump(base()))) == []


# ------------------------------------------------------------- file families


def bad_name_files() -> Iterator[tuple[str, str]]:
    for kind, place in PLACES.items():
        for name in BAD_NAMES:
            if KIND_RULE[kind].problem(name) is None:
                continue
            doc = base()
            place(doc, name)
            yield f"{kind} {name[:20]!r}", dump(doc)


ADDRESS_CASES: list[tuple[str, Any]] = [
    ("ipv4", a) for a in ("0.0.0.0/24", "127.0.0.1/8", "224.0.0.5/24", "169.254.1.1/16",
                          "198.18.4.0/24", "198.18.4.255/24", "255.255.255.255/24",
                          "240.0.0.1/8", "198.18.4.12/24", "300.1.1.1/24", "198.18.4.1/33",
                          "abc", "", 12345, None, ["198.18.4.11/24"], "198.18.4.11/24/1",
                          "2001:db8::1/64")
] + [
    ("ipv6", a) for a in ("::/64", "::1/128", "ff02::1/64", "fe80::1/64", "2001:db8:4::/64",
                          "2001:db8::1/129", "zz::1/64", "198.18.4.11/24")
]


def address_files() -> Iterator[tuple[str, str]]:
    for family, value in ADDRESS_CASES:
        doc = base()
        vmk = _host0(doc)["vmknics"]["vmk1"]
        if family == "ipv4":
            vmk["ipv4"]["address"] = value
        else:
            vmk["ipv6"] = {"addresses": [value]}
        yield f"{family} {value!r}", dump(doc)
    doc = base()  # the same address on the same VLAN of another host (ADDR-2)
    doc["hosts"]["esx02"]["vmknics"]["vmk2"]["ipv4"]["address"] = "198.18.5.11/24"
    yield "duplicate on dvs VLAN 50", dump(doc)
    doc = base()  # a static address given with dhcp... is ignored; a gateway off-link is not
    _host0(doc)["vmknics"]["vmk0"]["ipv4"] = {"type": "static"}
    yield "static without address", dump(doc)


NUMBER_FIELDS: list[tuple[str, Callable[[Doc], dict[str, Any]]]] = [
    ("mtu", lambda d: _host0(d)["vswitches"]["vSwitch0"]),
    ("mtu", lambda d: _host0(d)["vmknics"]["vmk1"]),
    ("mtu", lambda d: d["distributedSwitches"]["dvs01"]),
    ("vlan", lambda d: _host0(d)["vswitches"]["vSwitch0"]["portgroups"]["vMotion"]),
    ("vlan", lambda d: d["distributedSwitches"]["dvs01"]["portgroups"]["vSAN"]),
]
HUGE = [10**30, -1, 0, 99999, float("inf"), float("nan"), "big", [1], {"a": 1}, "9" * 400,
        1.5, "0x10"]


def number_files() -> Iterator[tuple[str, str]]:
    for field, where in NUMBER_FIELDS:
        for value in HUGE:
            if field == "vlan" and value == 0:
                continue  # untagged: valid
            doc = base()
            where(doc)[field] = value
            yield f"{field}={str(value)[:20]}", dump(doc)
    for field, value in (("speed", 10**12), ("speed", -5), ("mtu", 100000)):
        doc = base()
        _host0(doc)["nics"] = {"vmnic0": {field: value}}
        yield f"nic {field}={value}", dump(doc)
    doc = base()
    _host0(doc)["netstacks"] = {"defaultTcpipStack": {"maxConnections": 10**100}}
    yield "maxConnections 10**100", dump(doc)


def unknown_field_files() -> Iterator[tuple[str, str]]:
    spots: list[Callable[[Doc], dict[str, Any]]] = [
        lambda d: d, lambda d: _host0(d), lambda d: _host0(d)["vswitches"]["vSwitch0"],
        lambda d: _host0(d)["vmknics"]["vmk1"], lambda d: _host0(d)["vmknics"]["vmk1"]["ipv4"],
        lambda d: d["clusters"]["cl01"], lambda d: d["distributedSwitches"]["dvs01"],
        lambda d: _host0(d)["storage"], lambda d: _host0(d)["storage"]["nfs"]["ds1"],
    ]
    for i, spot in enumerate(spots):
        for key in ("vlna", "__proto__", "x" * 200, "Mtu"):
            doc = base()
            spot(doc)[key] = 1
            yield f"unknown {key[:10]} at {i}", dump(doc)


def wrong_type_files() -> Iterator[tuple[str, str]]:
    changes: list[tuple[str, Callable[[Doc], None]]] = [
        ("hosts list", lambda d: d.__setitem__("hosts", ["esx01"])),
        ("hosts int", lambda d: d.__setitem__("hosts", 5)),
        ("host list", lambda d: d["hosts"].__setitem__("esx01", [1])),
        ("vswitches str", lambda d: _host0(d).__setitem__("vswitches", "vSwitch0")),
        ("vmknics list", lambda d: _host0(d).__setitem__("vmknics", ["vmk0"])),
        ("services str", lambda d: _host0(d)["vmknics"]["vmk0"].__setitem__("services", "x")),
        ("service unknown", lambda d: _host0(d)["vmknics"]["vmk0"].__setitem__(
            "services", ["teleport"])),
        ("enabled maybe", lambda d: _host0(d)["vmknics"]["vmk0"].__setitem__("enabled", "maybe")),
        ("ipv4 int", lambda d: _host0(d)["vmknics"]["vmk0"].__setitem__("ipv4", 5)),
        ("ipv4 type", lambda d: _host0(d)["vmknics"]["vmk0"]["ipv4"].__setitem__("type", "x")),
        ("portgroups list", lambda d: _host0(d)["vswitches"]["vSwitch0"].__setitem__(
            "portgroups", ["a"])),
        ("uplinks str", lambda d: _host0(d)["vswitches"]["vSwitch0"].__setitem__("uplinks", 1)),
        ("cluster hosts str", lambda d: d["clusters"]["cl01"].__setitem__("hosts", "esx01")),
        ("ha text", lambda d: d["clusters"]["cl01"].__setitem__("ha", "sometimes")),
        ("nfs version", lambda d: _host0(d)["storage"]["nfs"]["ds1"].__setitem__("version", 5)),
        ("physical list", lambda d: d.__setitem__("physical", [])),
        ("name list", lambda d: d.__setitem__("name", ["a"])),
    ]
    for label, change in changes:
        doc = base()
        change(doc)
        yield label, dump(doc)


def reference_files() -> Iterator[tuple[str, str]]:
    changes: list[tuple[str, Callable[[Doc], None]]] = [
        ("portgroup", lambda d: _host0(d)["vmknics"]["vmk1"].__setitem__("portgroup", "nope")),
        ("netstack", lambda d: _host0(d)["vmknics"]["vmk1"].__setitem__("netstack", "custom")),
        ("uplink nic", lambda d: _host0(d)["vswitches"]["vSwitch0"].__setitem__(
            "uplinks", ["vmnic9"])),
        ("cluster host", lambda d: d["clusters"]["cl01"]["hosts"].append("esx09")),
        ("dvs", lambda d: _host0(d)["vmknics"]["vmk2"].__setitem__("dvs", "dvs09")),
        ("dv portgroup", lambda d: _host0(d)["vmknics"]["vmk2"].__setitem__("dvportgroup", "x")),
        ("dvs host", lambda d: d["distributedSwitches"]["dvs01"]["hosts"].__setitem__(
            "esx09", {})),
        ("teaming uplink", lambda d: _host0(d)["vswitches"]["vSwitch0"].__setitem__(
            "teaming", {"active": ["vmnic7"]})),
        ("both attachments", lambda d: _host0(d)["vmknics"]["vmk2"].__setitem__(
            "portgroup", "vMotion")),
        ("uplink shared", lambda d: _host0(d)["vswitches"].__setitem__(
            "vSwitch1", {"uplinks": ["vmnic0"]})),
        ("EX-3", lambda d: _host0(d)["vmknics"]["vmk0"]["services"].append("vmotion")),
        ("portgroup twice", lambda d: _host0(d)["vswitches"].__setitem__(
            "vSwitch1", {"portgroups": {"vMotion": {}}})),
    ]
    for label, change in changes:
        doc = base()
        change(doc)
        yield f"reference {label}", dump(doc)


def textual_files() -> Iterator[tuple[str, str | bytes]]:
    good = dump(base())
    yield "empty", ""
    yield "comment only", "# nothing\n"
    yield "null", "null\n"
    yield "top list", "- a\n- b\n"
    yield "top scalar", "hello\n"
    yield "two documents", good + "---\n" + good
    yield "tab indent", "hosts:\n\tesx01: {}\n"
    yield "unclosed flow", "hosts: {esx01: [\n"
    yield "bad indent", "hosts:\n  esx01:\n vswitches: {}\n"
    yield "mapping in scalar", "hosts: a: b: c\n"
    yield "python tag", "hosts: !!python/object/apply:os.system ['id']\n"
    yield "custom tag", "hosts: !custom {}\n"
    yield "binary", b"\x00\x01\x02\xff\xfe hosts"
    yield "latin-1", "hosts:\n  esx01: {}\n# caf\xe9\n".encode("latin-1")
    yield "NUL in text", "hosts:\n  esx\x0001: {}\n"
    yield "undefined alias", "hosts: *nothing\n"
    yield "merge of scalar", "a: &a 1\nhosts:\n  <<: *a\n"
    yield "only a key", "hosts\n"
    yield "quote unclosed", 'hosts: {"esx01: {}}\n'
    for level, key in (("top", "hosts"), ("host", "esx01"), ("vmknic", "vmk0")):
        if level == "top":
            text = good + "hosts: {}\n"
        elif level == "host":
            text = good.replace("  esx02:", "  esx01:", 1)
        else:
            text = good.replace("      vmk1:", "      vmk0:", 1)
        yield f"duplicate {level} key {key}", text
    yield "duplicate flow key", "hosts: {esx01: {}, esx01: {}}\n"
    yield "duplicate in anchor", "x: &x {a: 1, a: 2}\nhosts: {}\n"


def bomb(levels: int, width: int, field: str) -> str:
    lines = ["x-bomb:", f"  a0: &a0 [{', '.join(['198.18.0.1'] * width)}]"]
    for i in range(1, levels + 1):
        lines.append(f"  a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * width)}]")
    lines += ["hosts:", "  esx01:", "    netstacks:", "      defaultTcpipStack:",
              f"        {field}: *a{levels}"]
    return "\n".join(lines) + "\n"


def bounded_files() -> Iterator[tuple[str, str | bytes]]:
    for levels, width in ((9, 10), (6, 10), (20, 2), (30, 2), (4, 40), (3, 100)):
        for field in ("dnsServers", "searchDomains"):
            yield f"bomb {levels}x{width} {field}", bomb(levels, width, field)
    for depth in (65, 100, 1000, 5000):
        yield f"flow depth {depth}", "hosts: " + "[" * depth + "]" * depth + "\n"
        yield f"block depth {depth}", "hosts:\n" + "".join(
            "  " * (i + 1) + f"k{i}:\n" for i in range(min(depth, 400)))
    yield "too large", b"hosts: {}\n" + b"#" * (16 * 2**20)


FAMILIES: list[tuple[str, Callable[[], Iterator[tuple[str, Any]]]]] = [
    ("names", bad_name_files), ("addresses", address_files), ("numbers", number_files),
    ("unknown", unknown_field_files), ("types", wrong_type_files),
    ("references", reference_files), ("text", textual_files), ("bounded", bounded_files),
]


@pytest.mark.parametrize("family", [f for f, _ in FAMILIES])
def test_malformed_files_are_refused(store: Path, scratch: Path, family: str) -> None:
    cases = list(dict(FAMILIES)[family]())
    assert cases
    for label, content in cases:
        refuse_file(store, scratch, content, f"{family}: {label}")


# ------------------------------------------------------------ command families


def bad_commands() -> Iterator[tuple[list[str], bool]]:
    """(argv after --store, esxcli-style?)."""
    for name in BAD_NAMES:
        if name.startswith("-") or name == "":
            continue  # an option to click, or an empty argument: usage errors, below
        yield ["host", "add", name], False
        yield ["cluster", "add", name], False
        yield ["dvs", "add", name], False
        yield ["vm", "create", name, "-H", "esx01"], False
        yield ["vm", "create", "web01", "-H", name], False
        yield ["vm", "create", "web01", "-H", "esx01", "--disk", "1GiB", "--datastore", name], \
            False
        yield ["vm", "clone", "web01", "--to", "esx02", "--name", name], False
        yield ["vm", "migrate", "web01", "--to", "esx02", "--datastore", name], False
        yield ["vm", "show", name], False
        yield ["vm", "destroy", name], False
        yield ["vm", "power-on", name], False
        yield ["vm", "snapshot", "create", "web01", name], False
        yield ["vmotion", name, "--to", "esx02"], False
        yield ["replication", "configure", name, "--server", "esx02", "--target", "esx02",
               "--rpo", "5m"], False
        yield ["esxcli", "-H", "esx01", "network", "vswitch", "standard", "add", "-v", name], \
            True
        yield ["esxcli", "-H", "esx01", "network", "vswitch", "standard", "portgroup", "add",
               "-p", name, "-v", "vSwitch0"], True
        yield ["esxcli", "-H", "esx01", "network", "ip", "netstack", "add", "-N", name], True
        yield ["esxcli", "-H", "esx01", "network", "ip", "interface", "add", "-i", name, "-p",
               "vMotion"], True
    for size in ("1000000000TiB", "9" * 60 + "GiB", "-1GiB", "lots", "1e9TiB", "0", "65GiB"):
        yield ["vm", "create", "web01", "-H", "esx01", "--memory", size], False
        yield ["vm", "create", "web01", "-H", "esx01", "--disk", size], False
        yield ["vm", "create", "web01", "-H", "esx01", "--disk", "1GiB", "--disk-data", size], \
            False
    for rate in ("1000000TB/s", "-5MB/s", "fast", "0"):
        yield ["vm", "create", "web01", "-H", "esx01", "--dirty-rate", rate + "x"], False
        yield ["vmotion", "web01", "--to", "esx02", "--rate-limit", rate], False
        yield ["vm", "migrate", "web01", "--to", "esx02", "--limit", rate], False
    for rpo in ("0", "-5m", "1e9h", "100000h", "soon", "9" * 100):
        yield ["replication", "configure", "web01", "--server", "esx02", "--target", "esx02",
               "--rpo", rpo], False
    for args in (["--seed", "-1"], ["--seed", str(2**40)], ["--memory", ""], ["-H", ""]):
        yield ["vm", "create", "web01", "-H", "esx01", *args], False
    for args in (["--nics", "0"], ["--nics", "33"], ["--nics", "x"],
                 ["--management-ip", "0.0.0.0/24"], ["--management-ip", "198.18.0.11/24"],
                 ["--management-ip", "300.0.0.1/24"], ["--management-ip", "224.0.0.1/4"]):
        yield ["host", "add", "esx05", *args], False
    yield ["host", "add", "esx01"], False  # AlreadyExists
    yield ["host", "remove", "esx09"], False
    yield ["cluster", "remove", "cl09"], False
    yield ["dvs", "add", "dvs09", "--uplinks", "100000000"], False
    yield ["dvs", "add", "dvs09", "--mtu", "99999"], False
    yield ["dvs", "host", "add", "dvs01", "esx01", "--map", "Uplink 1=vmnic99"], False
    yield ["dvs", "host", "add", "dvs01", "esx09", "--map", "garbage"], False
    yield ["cluster", "host", "add", "cl01", "esx09"], False
    yield ["events", "--limit", "0"], False
    yield ["bogus"], False
    yield ["--bogus"], False
    yield ["vm", "create"], False
    yield ["vm", "create", "web01"], False
    yield ["validate"], False
    yield ["validate", "/nonexistent/file.yaml"], False
    yield ["validate", "/"], False
    yield ["validate", "/dev/zero"], False
    yield ["apply", "--yes", "/proc/self/status"], False
    for ip in ("0.0.0.0", "127.0.0.1", "224.0.0.1", "198.18.4.0", "198.18.4.255",
               "198.18.4.12", "169.254.0.9", "999.1.1.1", "x"):
        yield ["esxcli", "-H", "esx01", "network", "ip", "interface", "ipv4", "set", "-i",
               "vmk1", "-t", "static", "-I", ip, "-N", "255.255.255.0"], True
    for ip in ("::/64", "::1/128", "ff02::1/64", "fe80::9/64", "2001:db8::/64", "zz::/64"):
        yield ["esxcli", "-H", "esx01", "network", "ip", "interface", "ipv6", "address",
               "add", "-i", "vmk1", "-I", ip], True
    for host in ("esx09", "../x"):
        yield ["esxcli", "-H", host, "network", "ip", "interface", "list"], True


COMMANDS = list(bad_commands())


def test_malformed_commands_are_refused(store: Path) -> None:
    for args, esxcli in COMMANDS:
        cli(store, args, esxcli=esxcli)


# ---------------------------------------------------------------- hypothesis

HYPO = settings(max_examples=120, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture,
                                       HealthCheck.too_slow])


@HYPO
@given(kind=st.sampled_from(sorted(PLACES)), name=st.text(min_size=0, max_size=100))
def test_generated_bad_names_in_files(store: Path, scratch: Path, kind: str, name: str) -> None:
    if KIND_RULE[kind].problem(name) is None or "\0" in name:
        name = name + "/.."  # make it bad: no rule allows '/'
    if "\0" in name or any(0xD800 <= ord(c) <= 0xDFFF for c in name):
        name = name.replace("\0", "/").encode("utf-8", "replace").decode("utf-8")
    doc = base()
    PLACES[kind](doc, name)
    refuse_file(store, scratch, dump(doc), f"hypothesis {kind} name")


@HYPO
@given(field=st.sampled_from(range(len(NUMBER_FIELDS))),
       value=st.one_of(st.integers(max_value=-1), st.integers(min_value=10**6),
                       st.text(alphabet="abcxyz!?", min_size=1, max_size=20),
                       st.lists(st.integers(), min_size=1, max_size=3)))
def test_generated_out_of_range_values(store: Path, scratch: Path, field: int,
                                       value: object) -> None:
    name, where = NUMBER_FIELDS[field]
    doc = base()
    where(doc)[name] = value
    refuse_file(store, scratch, dump(doc), f"hypothesis {name}={str(value)[:20]}")


@HYPO
@given(name=st.text(min_size=1, max_size=120).filter(
           lambda n: names.VM.problem(n) is not None and not n.startswith("-")
           and "\0" not in n),
       size=st.one_of(st.integers(min_value=2**43).map(str),
                      st.text(alphabet="0123456789.eE+-kKgGxX ", min_size=1, max_size=30)))
def test_generated_vm_commands(store: Path, name: str, size: str) -> None:
    cli(store, ["vm", "create", name, "-H", "esx01", "--disk", size],
        label="hypothesis vm create")


# ------------------------------------------------------------------ subprocess


def test_a_real_process_prints_one_line_and_no_traceback(store: Path, scratch: Path) -> None:
    """The installed entry point, not CliRunner: what a user's shell sees."""
    bomb_file = scratch / "bomb.yaml"
    bomb_file.write_text(bomb(9, 10, "dnsServers"))
    before = store.read_bytes()
    for args in (["validate", str(bomb_file)], ["vm", "create", "a/b", "-H", "esx01"],
                 ["vm", "create", "web01", "-H", "esx01", "--disk", "1000000000TiB"],
                 ["host", "add", "../../escape"], ["nope"]):
        TRIED.append("subprocess " + " ".join(args)[:60])
        proc = subprocess.run([sys.executable, "-m", "vmknet.cli.main", "--store", str(store),
                               *args], capture_output=True, text=True, timeout=60, check=False)
        assert proc.returncode != 0 and "Traceback" not in proc.stderr, (args, proc.stderr)
        assert len(proc.stderr.strip().splitlines()) == 1, (args, proc.stderr)
        assert proc.stderr.startswith("Error ["), (args, proc.stderr)
    assert store.read_bytes() == before


def test_zz_corpus_size() -> None:
    """Runs last in this file (--dist loadfile keeps a file's order): the closing count."""
    print(f"\nmalformed inputs tried: {len(TRIED)}, all refused cleanly")
    assert len(TRIED) >= MIN_CORPUS, len(TRIED)
