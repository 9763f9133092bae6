"""SEC-5: one name rule per object kind, the same refusal everywhere, paths stay inside."""

from __future__ import annotations

import os
from functools import partial
from pathlib import Path

import pytest
from builders import lab
from hypothesis import given, settings
from hypothesis import strategies as st

from vmknet.dataplane import naming
from vmknet.errors import FileFormatError, InvalidArgument
from vmknet.model import names
from vmknet.ops import execute
from vmknet.ops import host as host_ops
from vmknet.paths import inside
from vmknet.rules.checks import check
from vmknet.state import loads

GOOD = {
    names.HOST: ["esx01", "ESX-01", "a", "x" * 63, "9host"],
    names.VM: ["web01", "web_01-a", "v" * 80],
    names.DATASTORE: ["ds1", "datastore1.local", "d" * 64],
    names.VSWITCH: ["vSwitch0", "vs_1-a"],
    names.PORTGROUP: ["Management Network", "vMotion-A", "VM Network (10)", "p" * 80],
    names.NETSTACK: ["defaultTcpipStack", "vmotion", "_x-1"],
    names.VMKNIC: ["vmk0", "vmk9999"],
    names.NIC: ["vmnic0", "vmnic31"],
}
BAD = ["", "../../escape", ".esx01", "a/b", "..", ".", "a b;rm -rf /", "$(id)", "a\nb",
       "x" * 300, "é", "a\0b", "*"]


@pytest.mark.parametrize(("rule", "name"), [(r, n) for r, ns in GOOD.items() for n in ns])
def test_good_names_pass(rule: names.NameRule, name: str) -> None:
    assert rule.problem(name) is None


@pytest.mark.parametrize("rule", list(names.RULES.values()), ids=list(names.RULES))
@pytest.mark.parametrize("name", BAD)
def test_bad_names_are_refused_by_every_rule(rule: names.NameRule, name: str) -> None:
    problem = rule.problem(name)
    assert problem is not None and "\n" not in problem and len(problem) < 300


def test_hosts_are_one_dns_label() -> None:
    for name in ("esx01.lab", "esx01-", "-esx01", "x" * 64, "_pnet", "esx_01"):
        assert names.HOST.problem(name) is not None, name


def test_file_and_operation_refuse_a_host_name_with_the_same_text() -> None:
    with pytest.raises(FileFormatError) as from_file:
        loads('hosts:\n  "../../escape": {}\n', "dc.yaml")
    assert from_file.value.code == "InvalidArgument"
    assert str(from_file.value).startswith("dc.yaml:2: hosts/../../escape: Invalid host name")
    with pytest.raises(InvalidArgument) as from_op:
        execute(lab(1), partial(host_ops.host_add, name="../../escape"))
    assert from_op.value.message in str(from_file.value)


@pytest.mark.parametrize(("field", "text"), [
    ("vswitch", "hosts:\n  esx01:\n    vswitches:\n      'a/b': {}\n"),
    ("portgroup", "hosts:\n  esx01:\n    vswitches:\n      vSwitch0:\n        portgroups:\n"
                  "          '../pg': {}\n"),
    ("netstack", "hosts:\n  esx01:\n    netstacks:\n      'bad name!': {}\n"),
    ("interface", "hosts:\n  esx01:\n    vmknics:\n      eth0: {portgroup: x}\n"),
    ("physical NIC", "hosts:\n  esx01:\n    nics:\n      eth0: {}\n"),
    ("datastore", "hosts:\n  esx01:\n    storage:\n      nfs:\n        '/etc': {}\n"),
    ("cluster", "clusters:\n  'cl;01': {}\n"),
    ("distributed switch", "distributedSwitches:\n  'dvs/1': {}\n"),
    ("uplink", "distributedSwitches:\n  dvs1: {uplinks: ['Up/1']}\n"),
])
def test_every_kind_is_refused_in_files(field: str, text: str) -> None:
    with pytest.raises(FileFormatError, match=f"Invalid {field} name"):
        loads(text)


def test_checks_refuse_names_that_bypassed_the_model() -> None:
    dc = lab(1)
    dc.hosts[".esx01"] = dc.hosts["esx01"].model_copy(deep=True)
    dc.hosts["esx01"].vswitches["vSwitch0"].portgroups["a/b"] = dc.hosts["esx01"].vswitches[
        "vSwitch0"].portgroups["Management Network"]
    codes = {(e.code, e.details["path"]) for e in check(dc)}
    assert ("InvalidArgument", "hosts/.esx01") in codes
    assert ("InvalidArgument", "hosts/esx01/vswitches/vSwitch0/portgroups/a/b") in codes


def test_require_names_the_option() -> None:
    with pytest.raises(InvalidArgument, match=r"^--datastore: Invalid datastore name '/etc'"):
        names.require(names.DATASTORE, "/etc", "--datastore")
    assert names.require(names.VM, "web01") == "web01"


@settings(max_examples=300, deadline=None)
@given(st.text(min_size=1, max_size=90), st.text(min_size=1, max_size=90))
def test_accepted_names_never_leave_the_base(tmp_path_factory: pytest.TempPathFactory,
                                             host: str, vm: str) -> None:
    base = tmp_path_factory.getbasetemp() / "base"
    for rule, name in ((names.HOST, host), (names.VM, vm), (names.DATASTORE, vm)):
        if rule.problem(name) is None:
            path = inside(base, name)
            assert os.path.commonpath([base, path]) == str(base) and path != base


labels = st.from_regex(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,20}[A-Za-z0-9])?", fullmatch=True)
stacks = st.from_regex(r"[A-Za-z0-9_-]{1,32}", fullmatch=True)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(labels, stacks), min_size=2, max_size=6, unique=True))
def test_accepted_hosts_and_stacks_never_share_a_namespace(pairs: list[tuple[str, str]]) -> None:
    hosts = {h for h, _ in pairs}
    assert all(names.HOST.problem(h) is None for h in hosts)
    spaces = [naming.host_ns("lab", h) for h in hosts]
    spaces += [naming.stack_ns("lab", h, s) for h, s in pairs]
    spaces += [naming.pnet_ns("lab"), naming.controller_ns("lab")]
    assert len(spaces) == len(set(spaces))


def test_inside_refuses_traversal_and_symlinks_out(tmp_path: Path) -> None:
    base = tmp_path / "base"
    base.mkdir()
    (base / "out").symlink_to(tmp_path)
    assert inside(base, "lab", "esx01", "datastores") == base / "lab" / "esx01" / "datastores"
    for parts in (("..",), ("a/../..",), ("",), (".",), ("x\0",), ("/etc",), ("out", "x")):
        with pytest.raises(InvalidArgument) as err:
            inside(base, *parts)
        assert err.value.code == "SEC-5"
