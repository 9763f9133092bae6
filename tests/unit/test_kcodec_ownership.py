"""Kernel ops over the management channel (kcodec) and who owns each op (ownership)."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vmknet.dataplane import kcodec, naming
from vmknet.dataplane.kstate import KernelState
from vmknet.dataplane.ownership import partition
from vmknet.dataplane.plan import plan
from vmknet.dataplane.render import render
from vmknet.errors import InvalidArgument
from vmknet.ops import execute
from vmknet.ops.vswitch import portgroup_set
from vmknet.state import load_file

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "lab.yaml"


def test_every_op_of_a_whole_lab_roundtrips_through_json() -> None:
    ops = plan(KernelState(), render(load_file(EXAMPLE), "lab"))
    assert len(ops) > 300
    for op in ops:
        wire = json.loads(json.dumps(kcodec.encode(op)))
        assert kcodec.decode_op(wire) == op
        assert kcodec.decode_op(kcodec.encode(op.inverse())) == op.inverse()


@pytest.mark.parametrize("bad", [
    {"type": "Popen", "args": ["sh"]},
    {"type": "Link", "ns": "x", "name": "y", "kind": "veth"},  # a state object, not an op
    {"type": "CreateNamespace", "ns": 5},
    {"type": "CreateNamespace", "ns": "x", "extra": 1},
    {"type": "AddAddress", "address": {"type": "Route", "ns": "x", "dst": "default"}},
    {"type": "SetSysctl", "ns": "x", "key": "k", "before": None, "after": True},
    "CreateNamespace",
])
def test_foreign_or_malformed_objects_are_refused(bad: object) -> None:
    with pytest.raises(InvalidArgument):
        kcodec.decode_op(bad)


@settings(max_examples=300, deadline=None)
@given(st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=8),
                    lambda inner: st.lists(inner, max_size=4)
                    | st.dictionaries(st.sampled_from(["type", "ns", "link", "before",
                                                       "after", "name", "kind"]),
                                      inner | st.sampled_from(["AddLink", "Link", "veth"]),
                                      max_size=5), max_leaves=30))
def test_decoder_never_raises_outside_the_error_tree(data: object) -> None:
    with contextlib.suppress(InvalidArgument):
        kcodec.decode_op(data)


def test_a_vlan_change_is_owned_by_its_host_alone() -> None:
    dc = load_file(EXAMPLE)
    changed, _ = execute(dc, lambda d: portgroup_set(d, host="esx01",
                                                     name="Management Network", vlan=99))
    lab, hosts = "lab", list(dc.hosts)
    before, after = render(dc, lab), render(changed, lab)
    ops = plan(before, after)
    owners = partition(ops, lab, hosts, [before, after])
    assert set(owners) == {"esx01", None}  # the new VLAN's segment is the fabric's
    for i in owners["esx01"]:
        assert "esx02" not in repr(ops[i]) and "esx03" not in repr(ops[i])
    pnet = naming.pnet_ns(lab)
    assert any(pnet in repr(ops[i]) for i in owners["esx01"])  # the wire's far end
