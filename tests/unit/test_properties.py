"""Property tests: any sequence of operations, accepted or refused, keeps the SPEC invariants."""

from __future__ import annotations

import tempfile
from functools import partial
from ipaddress import IPv4Address
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vmknet.errors import VmknetError
from vmknet.events import Event
from vmknet.model import DEFAULT_STACK, Datacenter, Service
from vmknet.ops import Operation, execute
from vmknet.ops import host as H
from vmknet.ops import interface as I
from vmknet.ops import netstack as N
from vmknet.ops import storage as S
from vmknet.ops import vswitch as V
from vmknet.rules.checks import check

HOSTS = ["esx01", "esx02"]
VMKS = [f"vmk{i}" for i in range(4)]
STACKS = [DEFAULT_STACK, "vmotion", "vSphereProvisioning", "custom1"]
PORTGROUPS = ["Management Network", "PG-A", "PG-B"]


def start() -> Datacenter:
    dc = Datacenter()
    for h in HOSTS:
        dc, _ = execute(dc, partial(H.host_add, name=h))
        dc, _ = execute(dc, partial(V.add, host=h, name="vSwitch1", mtu=9000))
        dc, _ = execute(dc, partial(V.uplink_add, host=h, vswitch="vSwitch1", uplink="vmnic2"))
        for pg in PORTGROUPS[1:]:
            dc, _ = execute(dc, partial(V.portgroup_add, host=h, vswitch="vSwitch1", name=pg))
        # default-stack adapters already carrying vMotion and provisioning, so EX-1/EX-4 can fire
        dc, _ = execute(dc, partial(I.add, host=h, name="vmk1", portgroup="PG-A"))
        dc, _ = execute(dc, partial(I.tag_add, host=h, name="vmk1", service=Service.VMOTION))
        dc, _ = execute(dc, partial(I.tag_add, host=h, name="vmk1",
                                    service=Service.PROVISIONING))
    return dc


START = start()
host = st.sampled_from(HOSTS)
vmk = st.sampled_from(VMKS)
service = st.sampled_from(list(Service))
ops: st.SearchStrategy[Operation] = st.one_of(
    st.builds(partial, st.just(I.add), host=host, name=vmk,
              portgroup=st.sampled_from(PORTGROUPS), netstack=st.sampled_from(STACKS),
              mtu=st.sampled_from([None, 1500, 9000])),
    st.builds(partial, st.just(I.remove), host=host, name=vmk),
    st.builds(partial, st.just(I.tag_add), host=host, name=vmk, service=service),
    st.builds(partial, st.just(I.tag_remove), host=host, name=vmk, service=service),
    st.builds(partial, st.just(I.set_), host=host, name=vmk, enabled=st.booleans()),
    st.builds(partial, st.just(I.ipv4_set), host=host, name=vmk, type=st.just("static"),
              address=st.integers(1, 20).map(lambda i: IPv4Address(f"198.18.0.{i}")),
              netmask=st.just(IPv4Address("255.255.255.0"))),
    st.builds(partial, st.just(N.add), host=host, name=st.sampled_from(STACKS)),
    st.builds(partial, st.just(N.remove), host=host, name=st.sampled_from(STACKS)),
    st.builds(partial, st.just(S.vsan_network_add), host=host, vmk=vmk),
    st.builds(partial, st.just(V.set_), host=host, name=st.just("vSwitch1"),
              mtu=st.sampled_from([1500, 9000])),
)


def assert_invariants(before: Datacenter, after: Datacenter) -> None:
    assert check(after) == []
    for name, h in after.hosts.items():
        for stack, svc in (("vmotion", Service.VMOTION),
                           ("vSphereProvisioning", Service.PROVISIONING)):
            if h.vmknics_on(stack):  # EX-1 / EX-4: no default-stack vMotion any more
                assert not [v for v in h.vmknics_on(DEFAULT_STACK)
                            if svc in h.vmknics[v].services]
        assert len(h.vmknics_with(Service.FT_LOGGING)) <= 1  # SVC-5
        assert h.vmknics_with(Service.MANAGEMENT)  # REQ-5
        old = before.hosts[name]
        for v, nic in h.vmknics.items():  # NS-4: an adapter's stack never changes
            if v in old.vmknics:
                assert old.vmknics[v].netstack == nic.netstack


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(ops, min_size=1, max_size=25))
def test_any_operation_sequence_keeps_invariants(sequence: list[Any]) -> None:
    dc = START
    for op in sequence:
        snapshot = dc.model_dump()
        try:
            new, _ = execute(dc, op)
        except VmknetError:
            assert dc.model_dump() == snapshot  # refused: nothing changed
            continue
        assert_invariants(dc, new)
        dc = new


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(ops, min_size=1, max_size=12))
def test_refused_commands_leave_the_store_byte_identical(sequence: list[Any]) -> None:
    from vmknet.inventory import Inventory

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "inventory.db"
        inv = Inventory.open(path)
        inv.run(lambda dc: _seed(dc))
        for op in sequence:
            before = path.read_bytes()
            try:
                inv.run(op)
            except VmknetError:
                assert path.read_bytes() == before
        assert check(inv.read()) == []


def _seed(dc: Datacenter) -> list[Event]:
    dc.hosts.update(START.model_copy(deep=True).hosts)
    return []
