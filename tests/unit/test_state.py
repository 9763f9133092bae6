"""The desired-state file (load, dump, error lines) and the plan (diff, order, NS-4)."""

from __future__ import annotations

from ipaddress import IPv4Interface, IPv6Interface
from pathlib import Path
from typing import Any

import pytest
import yaml
from builders import (
    add_cluster,
    add_dvs,
    add_nfs,
    add_route,
    add_vmk,
    big_datacenter,
    lab,
    set_gateway,
    vmotion_lab,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vmknet.errors import FileFormatError
from vmknet.model import (
    DEFAULT_STACK,
    Cluster,
    Datacenter,
    Host,
    IPv4Config,
    IPv6Config,
    IscsiAdapter,
    Netstack,
    PhysicalNic,
    PortGroup,
    Service,
    StandardSwitch,
    Vmknic,
)
from vmknet.state import canonical, dumps, fastyaml, load_file, loads, yamlio
from vmknet.state.diff import Change, diff, format_plan


def rich_datacenter() -> Datacenter:
    """Every kind of object at least once, IPv4 and IPv6, storage, clusters, a dvs."""
    dc = vmotion_lab(3)
    add_vmk(dc.hosts["esx01"], "vmk2", "vSAN", ip=["198.18.5.11/24", "2001:db8:5::11/64"],
            services=[Service.VSAN], vlan=30)
    set_gateway(dc.hosts["esx01"], "vmotion", "198.18.4.1")
    add_route(dc.hosts["esx01"], DEFAULT_STACK, "198.19.0.0/16", "198.18.0.1")
    add_nfs(dc.hosts["esx02"], "ds1", "/export/ds1", ["198.18.6.100"], version="4.1")
    dc.hosts["esx02"].storage.iscsi = IscsiAdapter(bound_vmknics=["vmk1"])
    add_cluster(dc, "cl01", ha=True, ft=True)
    add_dvs(dc, "dvs01", ["esx02", "esx03"], portgroups={"dv-vsan": 30}, mtu=9000)
    return dc


def error_of(text: str) -> FileFormatError:
    with pytest.raises(FileFormatError) as info:
        loads(text, "lab.yaml")
    return info.value


# --------------------------------------------------------------------------- roundtrip


@pytest.mark.parametrize("make", [Datacenter, lambda: lab(2), rich_datacenter,
                                  lambda: big_datacenter(4, cluster_size=2)])
def test_roundtrip_is_exact(make: Any) -> None:
    dc = make()
    assert loads(dumps(dc)) == dc
    assert diff(dc, loads(dumps(dc))) == []
    assert dumps(loads(dumps(dc))) == dumps(dc)


def test_dump_is_the_canonical_data_without_defaults_or_anchors() -> None:
    dc = rich_datacenter()
    text = dumps(dc)
    assert yaml.safe_load(text) == canonical(dc)
    assert "&id" not in text and "*id" not in text
    assert "congestionControl" not in text  # a default, left out
    assert dumps(Datacenter()) == "{}\n"


def test_load_file(tmp_path: Path) -> None:
    path = tmp_path / "lab.yaml"
    path.write_text(dumps(rich_datacenter()))
    assert load_file(path) == rich_datacenter()
    with pytest.raises(FileFormatError, match="cannot read"):
        load_file(tmp_path / "missing.yaml")


# Small strategies: names from short lists, documentation/benchmark addresses only.
STACKS = [DEFAULT_STACK, "vmotion", "vSphereProvisioning", "custom1"]
v4 = st.builds(lambda a, b, p: IPv4Interface(f"198.{18 + a % 2}.{b}.{10 + b}/{p}"),
               st.integers(0, 1), st.integers(0, 200), st.sampled_from([16, 22, 24]))
v6 = st.builds(lambda n: IPv6Interface(f"2001:db8:{n:x}::{n + 1:x}/64"), st.integers(0, 0xFFFE))
ipv4 = st.one_of(st.just(IPv4Config()), st.just(IPv4Config(type="dhcp")),
                 st.builds(lambda a: IPv4Config(type="static", address=a), v4))
vmknic = st.builds(
    Vmknic, portgroup=st.sampled_from(["Management Network", "PG-A"]),
    netstack=st.sampled_from(STACKS), mtu=st.sampled_from([1500, 9000]), enabled=st.booleans(),
    ipv4=ipv4, ipv6=st.builds(IPv6Config, addresses=st.lists(v6, max_size=2)),
    services=st.lists(st.sampled_from(list(Service)), max_size=2, unique=True),
)
host = st.builds(
    Host,
    nics=st.dictionaries(st.sampled_from([f"vmnic{i}" for i in range(4)]),
                         st.builds(PhysicalNic, speed=st.sampled_from([1000, 10000]),
                                   link=st.sampled_from(["up", "down"])), max_size=4),
    vswitches=st.dictionaries(st.sampled_from(["vSwitch0", "vSwitch1"]), st.builds(
        StandardSwitch, mtu=st.sampled_from([1500, 9000]),
        portgroups=st.dictionaries(st.sampled_from(["Management Network", "PG-A"]),
                                   st.builds(PortGroup, vlan=st.integers(0, 4095)))),
        max_size=2),
    netstacks=st.dictionaries(st.sampled_from(STACKS), st.builds(
        Netstack, congestion_control=st.sampled_from(["newreno", "cubic"])), max_size=3),
    vmknics=st.dictionaries(st.sampled_from([f"vmk{i}" for i in range(4)]), vmknic, max_size=4),
)
HOSTS = ["esx01", "esx02", "esx03"]
datacenters = st.builds(
    Datacenter,
    hosts=st.dictionaries(st.sampled_from(HOSTS), host, max_size=3),
    clusters=st.dictionaries(st.sampled_from(["cl01", "cl02"]), st.builds(
        Cluster, ha=st.booleans(), vsan=st.booleans(),
        hosts=st.lists(st.sampled_from(HOSTS), unique=True)), max_size=2),
)
SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(datacenters)
def test_property_roundtrip(dc: Datacenter) -> None:
    again = loads(dumps(dc))
    assert again == dc
    assert diff(dc, again) == []


@SETTINGS
@given(datacenters, datacenters)
def test_property_diff_is_empty_exactly_when_equal(a: Datacenter, b: Datacenter) -> None:
    changes = diff(a, b)
    assert (changes == []) == (canonical(a) == canonical(b) or a == b)
    assert len(format_plan(changes)) == len(changes)
    assert all(c.action == "add" for c in diff(Datacenter(), b) if c.path)
    assert all(c.action == "remove" for c in diff(b, Datacenter()) if c.path)


# --------------------------------------------------------------------------- the YAML reader


TRICKY = """\
a: yes
b: off
c: ~
d: ''
e: 0x1F
f: 017
g: 1_000
h: 1:20
i: .inf
j: 2024-01-01
k: "9000"
l: 3.5
m: |
  two
  lines
n: [1, -2, +3, 0]
o: {p: null, q: Null, r: true}
s: 0
t: 012abc
u:
"""


def test_fast_reader_gives_exactly_what_safe_load_gives() -> None:
    assert fastyaml.load(TRICKY) == yaml.safe_load(TRICKY)
    assert fastyaml.load("") is None
    assert fastyaml.load("# only a comment\n") is None


@pytest.mark.parametrize("text", ["a: &x 1\nb: *x\n", "a: !!str 1\n", "<<: {a: 1}\nb: 2\n",
                                  "? [a]\n: 1\n", "a: 1\n---\nb: 2\n"])
def test_fast_reader_leaves_rare_features_to_the_full_loader(text: str) -> None:
    with pytest.raises(fastyaml.Unsupported):
        fastyaml.load(text)


def test_anchors_and_merge_keys_still_load() -> None:
    text = """\
hosts:
  esx01: &base
    nics: {vmnic0: {speed: 25000}}
  esx02:
    <<: *base
    vmknics: {vmk0: {portgroup: Management Network}}
"""
    dc = loads(text)
    assert dc.hosts["esx02"].nics["vmnic0"].speed == 25000
    assert "vmk0" in dc.hosts["esx02"].vmknics


def test_happy_path_never_builds_the_line_map(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(text: str) -> None:
        raise AssertionError("the node tree is for errors only")

    monkeypatch.setattr(yamlio, "compose", refuse)
    dc = big_datacenter(20)
    assert loads(dumps(dc)) == dc


# --------------------------------------------------------------------------- error lines


BAD_MTU = """\
hosts:
  esx01:
    vmknics:
      vmk0:
        portgroup: Management Network
      vmk2:
        portgroup: vMotion
        netstack: vmotion
        mtu: 90000
"""


def test_bad_value_deep_in_a_host_points_at_its_line() -> None:
    err = error_of(BAD_MTU)
    assert err.details["line"] == 9
    assert err.details["path"] == "hosts/esx01/vmknics/vmk2/mtu"
    assert str(err) == ("lab.yaml:9: hosts/esx01/vmknics/vmk2/mtu: "
                        "Input should be less than or equal to 9000 (got 90000)")
    assert "\n" not in str(err)


def test_unknown_field_is_named_with_a_suggestion() -> None:
    err = error_of("hosts:\n  esx01:\n    vswitches:\n      vSwitch1:\n        mtuu: 9000\n")
    assert err.details["line"] == 5
    assert err.details["path"] == "hosts/esx01/vswitches/vSwitch1/mtuu"
    assert "unknown field 'mtuu' (did you mean 'mtu'?)" in str(err)


def test_unknown_top_level_field() -> None:
    err = error_of("name: lab\nhost:\n  esx01: {}\n")
    assert (err.details["line"], err.details["path"]) == (2, "host")
    assert "did you mean 'hosts'?" in str(err)


def test_duplicate_key_is_refused_at_the_second_occurrence() -> None:
    text = "hosts:\n  esx01:\n    vmknics:\n      vmk2: {mtu: 9000}\n      vmk2: {mtu: 1500}\n"
    err = error_of(text)
    assert err.details["line"] == 5
    assert err.details["path"] == "hosts/esx01/vmknics/vmk2"
    assert "duplicate key 'vmk2' (first at line 4)" in str(err)


def test_duplicate_key_inside_an_anchored_document() -> None:
    err = error_of("x: &a {b: 1}\nhosts:\n  esx01: {}\n  esx01: {}\n")
    assert (err.details["line"], err.details["path"]) == (4, "hosts/esx01")


def test_yaml_syntax_error_has_its_line() -> None:
    err = error_of("hosts:\n  esx01:\n    vmknics: [vmk2\n  esx02: {}\n")
    assert err.details["line"] == 4
    assert str(err).startswith("lab.yaml:4: invalid YAML")
    assert "\n" not in str(err)


def test_tab_indentation_is_a_syntax_error() -> None:
    err = error_of("hosts:\n\tesx01: {}\n")
    assert err.details["line"] == 2


@pytest.mark.parametrize("text", ["", "\n", "# just a comment\n", "---\n"])
def test_empty_file(text: str) -> None:
    assert "file is empty" in str(error_of(text))


@pytest.mark.parametrize(("text", "kind"), [("- esx01\n", "list"), ("esx01\n", "str")])
def test_top_level_must_be_a_mapping(text: str, kind: str) -> None:
    assert f"must be a mapping (the datacenter), not a {kind}" in str(error_of(text))


def test_missing_field_names_the_field_at_its_parent_line() -> None:
    err = error_of("hosts:\n  e:\n    storage:\n      fcoe:\n      - vmnic: vmnic1\n")
    assert (err.details["line"], err.details["path"]) == (5, "hosts/e/storage/fcoe/0/vmknic")
    assert "Field required" in str(err)


def test_union_errors_are_one_message_and_count_the_rest() -> None:
    text = ("hosts:\n  e:\n    netstacks:\n      x: {dnsServers: [q]}\n"
            "    vmknics: {vmk1: {mtu: 1}}\n")
    err = error_of(text)
    assert err.details["path"] == "hosts/e/netstacks/x/dnsServers/0"
    assert "IPv4 address | Input is not a valid IPv6 address (got 'q')" in str(err)
    assert str(err).endswith("(and 1 more error)")


# --------------------------------------------------------------------------- plan


def kinds(changes: list[Change], action: str) -> list[str]:
    return [c.kind for c in changes if c.action == action]


def test_diff_orders_removals_dependents_first_and_additions_parents_first() -> None:
    current = vmotion_lab(2)
    add_cluster(current, "old", ["esx02"])
    add_nfs(current.hosts["esx02"], "ds", "/ds", ["198.18.6.100"])
    desired = lab(1)
    desired.hosts["esx01"].vswitches["vSwitch0"].mtu = 9000
    add_vmk(desired.hosts["esx01"], "vmk5", "Repl", "custom1", "198.18.7.11/24")
    desired.hosts["esx03"] = lab(3).hosts["esx03"]
    add_cluster(desired, "new", ["esx03"])
    changes = diff(current, desired)

    actions = [c.action for c in changes]
    assert actions == sorted(actions, key=["remove", "modify", "add"].index)
    assert kinds(changes, "remove") == [
        "storage",
        "vmknic", "vmknic", "vmknic",  # esx01/vmk1, esx02/vmk0, esx02/vmk1
        "portgroup", "portgroup", "portgroup", "vswitch",
        "netstack", "netstack", "netstack",
        "nic", "nic", "nic", "nic", "host", "cluster",
    ]
    adds = kinds(changes, "add")
    order = ["cluster", "host", "nic", "vswitch", "portgroup", "netstack", "vmknic"]
    assert [k for k in dict.fromkeys(adds)] == order
    assert [c.path for c in changes if c.action == "modify"] == ["hosts/esx01/vswitches/vSwitch0"]


def test_modify_lists_the_changed_fields() -> None:
    current = vmotion_lab(1)
    desired = current.model_copy(deep=True)
    vmk0 = desired.hosts["esx01"].vmknics["vmk0"]
    vmk0.mtu = 9000
    vmk0.services.append(Service.VSAN)
    vmk0.ipv4.address = IPv4Interface("198.18.0.99/24")
    (change,) = diff(current, desired)
    assert (change.action, change.path, change.kind) == ("modify", "hosts/esx01/vmknics/vmk0",
                                                         "vmknic")
    assert change.summary == ("mtu 1500 -> 9000; ipv4.address 198.18.0.11/24 -> 198.18.0.99/24;"
                              " services +vsan")
    assert change.before["mtu"] == 1500 and change.after["mtu"] == 9000
    assert format_plan([change]) == [f"~ hosts/esx01/vmknics/vmk0  ({change.summary})"]


def test_changing_the_stack_of_a_vmknic_is_a_replace_ns4() -> None:
    current = lab(1)
    add_vmk(current.hosts["esx01"], "vmk2", "vMotion", ip="198.18.4.11/24",
            services=[Service.VMOTION])
    desired = lab(1)
    add_vmk(desired.hosts["esx01"], "vmk2", "vMotion", "vmotion", "198.18.4.11/24")
    changes = diff(current, desired)
    (replace,) = [c for c in changes if c.path == "hosts/esx01/vmknics/vmk2"]
    assert replace.action == "replace"
    assert "NS-4" in replace.summary and "defaultTcpipStack -> vmotion" in replace.summary
    # the new stack is added before the adapter is re-created on it
    paths = [c.path for c in changes]
    assert paths.index("hosts/esx01/netstacks/vmotion") < paths.index(replace.path)
    assert format_plan([replace])[0].startswith("± hosts/esx01/vmknics/vmk2  (NS-4: ")


def test_plan_lines() -> None:
    desired = lab(1)
    add_vmk(desired.hosts["esx01"], "vmk2", "vMotion", "vmotion", "198.18.4.11/24")
    lines = format_plan(diff(lab(1), desired))
    assert "+ hosts/esx01/vmknics/vmk2  (vmotion stack, 198.18.4.11/24, portgroup vMotion)" in lines
    assert format_plan(diff(desired, lab(1)))[0] == (
        "- hosts/esx01/vmknics/vmk2  (vmotion stack, 198.18.4.11/24, portgroup vMotion)")


def test_datacenter_fields_and_storage_are_compared_too() -> None:
    current = lab(1)
    desired = current.model_copy(deep=True)
    desired.name = "Lab"
    add_nfs(desired.hosts["esx01"], "ds", "/ds", ["198.18.6.100"])
    changes = diff(current, desired)
    assert [(c.action, c.path) for c in changes] == [("modify", ""), ("add", "hosts/esx01/storage")]
    assert format_plan(changes)[0] == "~ datacenter  (name Datacenter -> Lab)"
    assert "1 nfs datastore" in changes[1].summary


def test_diff_of_equal_datacenters_is_empty() -> None:
    dc = rich_datacenter()
    assert diff(dc, dc) == []
    assert diff(dc, dc.model_copy(deep=True)) == []
