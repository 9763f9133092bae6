"""The agent's reconcile loop (MGMT-3) on the in-memory backend, and its pure parts: a host's
part of a rendered lab, the state on the wire, "never fight a rollout", the management path."""

from __future__ import annotations

import base64
import json
import threading
import time
import zlib
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vmknet.agent import faults, reconcile
from vmknet.agent.reconcile import Reconciler, cuts, management_path, should_run
from vmknet.controller import desired as ctl_desired
from vmknet.controller.desired import (
    decode_state,
    encode_state,
    from_ops,
    host_part,
    state_ops,
    unpack_state,
)
from vmknet.controller.hosts import FAILING, HostTable
from vmknet.dataplane import kcodec, naming
from vmknet.dataplane.kops import DeleteLink, KernelOp, ModifyLink
from vmknet.dataplane.kstate import KernelState
from vmknet.dataplane.memory import MemoryBackend
from vmknet.dataplane.ownership import partition
from vmknet.dataplane.plan import canonical, plan
from vmknet.dataplane.render import render
from vmknet.errors import InvalidArgument
from vmknet.events import Event
from vmknet.model import Datacenter
from vmknet.state import load_file

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "lab.yaml"
LAB = "t"
DC = load_file(EXAMPLE)
HOSTS = sorted(DC.hosts)
WHOLE = render(DC, LAB)


def test_the_host_parts_are_disjoint_and_with_the_fabric_make_the_lab() -> None:
    parts = {h: host_part(WHOLE, LAB, h, HOSTS) for h in HOSTS}
    ops = plan(KernelState(), WHOLE)
    owners = partition(ops, LAB, HOSTS, [WHOLE])
    for host, part in parts.items():
        assert part.namespaces and part.links
        # Building a host's part from nothing is exactly the ops the rollout gives that host.
        assert sorted(map(repr, plan(KernelState(), part))) == sorted(
            repr(ops[i]) for i in owners[host])
    seen: set[tuple[str, str]] = set()
    for part in parts.values():
        assert not seen & set(part.links)
        seen |= set(part.links)
    fabric = {k for k in WHOLE.links if k not in seen}
    assert all(naming.parse_ns(ns, LAB, HOSTS).kind not in ("host", "stack")  # type: ignore[union-attr]
               for ns, _ in fabric)


def test_a_host_part_travels_as_json_and_comes_back_equal() -> None:
    for host in HOSTS:
        part = host_part(WHOLE, LAB, host, HOSTS)
        wire = json.loads(json.dumps(encode_state(part)))
        assert canonical(decode_state(wire, 100_000)) == canonical(part)
        assert from_ops(state_ops(part)) == part


def test_the_state_goes_deflated_and_only_when_the_agent_lacks_it() -> None:
    ctl = Ctl(DC)
    first = ctl_desired.desired(ctl, "esx01", {"lab": LAB})
    state = unpack_state(first["state"], 100_000)
    assert canonical(state) == canonical(host_part(WHOLE, LAB, "esx01", HOSTS))
    assert len(first["state"]) < 4096 < len(json.dumps(encode_state(state)))
    again = ctl_desired.desired(ctl, "esx01", {"lab": LAB, "have": first["digest"]})
    assert again["same"] is True and "state" not in again
    assert again["generation"] == first["generation"]
    other = ctl_desired.desired(ctl, "esx02", {"lab": LAB, "have": first["digest"]})
    assert "state" in other and other["digest"] != first["digest"]


def test_a_packed_state_is_inflated_only_up_to_its_limit() -> None:
    bomb = base64.b64encode(zlib.compress(b"[" + b" " * (1 << 20) + b"]")).decode()
    for bad in (5, "not base64!", base64.b64encode(b"not zlib").decode(), bomb,
                base64.b64encode(zlib.compress(b"{nope"))[:-8].decode()):
        try:
            unpack_state(bad, 100, max_bytes=64 << 10)
        except InvalidArgument as err:
            assert err.code == "ProtocolError"
        else:
            raise AssertionError(f"{bad!r} unpacked")


def test_a_desired_state_refuses_ops_that_change_things() -> None:
    part = host_part(WHOLE, LAB, HOSTS[0], HOSTS)
    link = next(iter(part.links.values()))
    for bad in ([{"type": "DeleteNamespace", "ns": "x"}], [{"x": 1}], "nope",
                [kcodec.encode(DeleteLink(link))]):
        try:
            decode_state(bad, 100)
        except InvalidArgument as err:
            assert err.code == "ProtocolError"
        else:
            raise AssertionError(f"{bad!r} decoded")
    try:
        decode_state([{"type": "CreateNamespace", "ns": "x"}] * 3, 2)
    except InvalidArgument:
        pass
    else:
        raise AssertionError("a state above the limit decoded")


@given(holding=st.booleans(), told=st.none() | st.integers(0, 3),
       realised=st.none() | st.integers(0, 3), due=st.booleans(), settling=st.booleans())
def test_never_fight_a_rollout(holding: bool, told: int | None, realised: int | None, due: bool,
                               settling: bool) -> None:
    run = should_run(holding=holding, told=told, realised=realised, due=due, settling=settling)
    if holding:
        assert not run  # a change in flight on the host: its rollout decides
    elif told is None or told != realised:
        assert run  # a new committed generation (or none heard yet): converge to it
    else:
        assert run == (due and not settling)  # the timer, but not before the store commits


# -- the loop on the in-memory backend ---------------------------------------------------------


class Guard:
    def __init__(self, host: str) -> None:
        self.host, self.held, self.released = host, False, None

    def holding(self) -> bool:
        return self.held

    def released_ago(self) -> float | None:
        return self.released

    def allowed(self, op: KernelOp) -> bool:
        return True  # the real guard's check has its own tests (test_agent_rollback.py)


class Ctl:
    """The controller's side of `desired`, over an inventory that can change."""

    def __init__(self, dc: Datacenter) -> None:
        self.dc = dc
        self.hosts = HostTable()
        self.events: list[Event] = []
        self.record: Callable[[list[Event]], None] = self.events.extend
        self.inventory: Callable[[], Datacenter] = lambda: self.dc


def _reconciler(host: str, ctl: Ctl, backend: MemoryBackend, guard: Guard,
                reports: list[dict[str, Any]]) -> Reconciler:
    links = {"esx01": [("198.18.0.11", "vmk0")], "esx02": [("198.18.0.12", "vmk0")]}[host]
    return Reconciler(LAB, host, guard, threading.Lock(),
                      lambda have: ctl_desired.desired(ctl, host, {"lab": LAB, "have": have}),
                      reports.append,
                      lambda: backend, lambda: links)


def _vmk1(state: KernelState, host: str) -> Any:
    return state.links[(naming.stack_ns(LAB, host, "vmotion"), "vmk1")]


def test_drift_is_repaired_and_only_on_its_own_host() -> None:
    backend = MemoryBackend(WHOLE)
    for host in ("esx01", "esx02"):
        link = _vmk1(backend.state, host)
        backend.state.links[link.key] = replace(link, mtu=1400)
    ctl, reports = Ctl(DC), []  # type: ignore[var-annotated]
    rec = _reconciler("esx01", ctl, backend, Guard("esx01"), reports)
    assert rec.run_once() and rec.error is None
    assert _vmk1(backend.state, "esx01").mtu == 9000
    assert _vmk1(backend.state, "esx02").mtu == 1400  # not its host: left alone
    assert rec.realised is not None and reports[0]["ops"] == 1
    assert "vmk1" in reports[0]["repaired"][0]
    assert "HostReconciledEvent" in ctl_desired.reconciled_event("esx01", reports[0]).message
    assert rec.run_once() and len(reports) == 1  # converged: the next pass changes nothing


def test_a_deleted_namespace_comes_back() -> None:
    backend = MemoryBackend(WHOLE)
    ns = naming.stack_ns(LAB, "esx02", "vSphereProvisioning")
    backend.state = canonical(KernelState(
        namespaces=backend.state.namespaces - {ns},
        links={k: v for k, v in backend.state.links.items() if k[0] != ns and (
            v.peer is None or v.peer[0] != ns)},
        addresses={a for a in backend.state.addresses if a.ns != ns},
        routes={r for r in backend.state.routes if r.ns != ns},
        rules={r for r in backend.state.rules if r.ns != ns},
        sysctls={k: v for k, v in backend.state.sysctls.items() if k[0] != ns},
        qdiscs=dict(backend.state.qdiscs), resolvers={
            k: v for k, v in backend.state.resolvers.items() if k != ns},
        filters=dict(backend.state.filters)))
    rec = _reconciler("esx02", Ctl(DC), backend, Guard("esx02"), [])
    assert rec.run_once(), rec.error
    assert not plan(backend.state, WHOLE)


def test_no_pass_touches_the_kernel_while_a_change_is_held() -> None:
    backend = MemoryBackend(WHOLE)
    link = _vmk1(backend.state, "esx01")
    backend.state.links[link.key] = replace(link, mtu=1400)
    guard = Guard("esx01")
    guard.held = True
    rec = _reconciler("esx01", Ctl(DC), backend, guard, [])
    assert rec.run_once() and not backend.executed and rec.realised is None


def test_a_pass_that_would_cut_the_management_adapter_is_refused() -> None:
    dc = DC.model_copy(deep=True)
    host = dc.hosts["esx01"]
    pg = host.vmknics["vmk0"].portgroup
    assert pg is not None
    switch = next(s for s in host.vswitches.values() if pg in s.portgroups)
    switch.portgroups[pg].vlan = 99  # the committed inventory moves the management VLAN
    backend = MemoryBackend(WHOLE)
    ctl = Ctl(dc)
    rec = _reconciler("esx01", ctl, backend, Guard("esx01"), [])
    assert not rec.run_once()
    assert rec.error is not None and "management adapter" in rec.error, rec.error
    assert not backend.executed
    ctl.hosts.heartbeat("esx01", "198.18.0.11", "vmk0", 1, None)
    ctl_desired.beat(ctl, "esx01", {"realised": rec.realised, "reconcileError": rec.error})
    row = ctl.hosts.report({"esx01": [("198.18.0.11", "vmk0")]})[0]
    assert row["condition"] == FAILING and "management adapter" in row["error"]
    assert row["desiredGeneration"] is not None and row["realisedGeneration"] is None


def test_the_management_path_and_what_cuts_it() -> None:
    part = host_part(WHOLE, LAB, "esx01", HOSTS)
    path = management_path(part, ["198.18.0.11"])
    stack = naming.stack_ns(LAB, "esx01", "defaultTcpipStack")
    assert (stack, "vmk0") in path
    assert any(ns == naming.pnet_ns(LAB) for ns, _ in path)  # the wires' far ends
    assert (naming.stack_ns(LAB, "esx01", "vmotion"), "vmk1") not in path
    vmk0 = part.links[(stack, "vmk0")]
    assert cuts(DeleteLink(vmk0), path, ["198.18.0.11"])
    assert cuts(ModifyLink(vmk0, replace(vmk0, up=False)), path, ["198.18.0.11"])
    assert not cuts(ModifyLink(vmk0, replace(vmk0, mtu=1400)), path, ["198.18.0.11"])
    vmk1 = _vmk1(part, "esx01")
    assert not cuts(DeleteLink(vmk1), path, ["198.18.0.11"])


def _until(check: Callable[[], bool], limit: float = 5.0) -> bool:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.01)
    return check()


def test_the_loop_runs_at_start_on_a_new_generation_and_not_while_held() -> None:
    backend = MemoryBackend(WHOLE)
    ctl, guard = Ctl(DC), Guard("esx01")
    calls: list[int] = []

    def fetch(have: str | None) -> dict[str, Any]:
        calls.append(1)
        return ctl_desired.desired(ctl, "esx01", {"lab": LAB, "have": have})

    rec = Reconciler(LAB, "esx01", guard, threading.Lock(), fetch, lambda r: None,
                     lambda: backend, lambda: [("198.18.0.11", "vmk0")], interval=600)
    rec.start()
    try:
        assert _until(lambda: rec.realised is not None)  # once at start
        first = rec.realised
        assert rec.heard(first) is None  # the same generation: nothing to do
        time.sleep(0.2)
        assert len(calls) == 1
        guard.held = True  # a rollout holds a change: a new generation waits for it
        ctl.dc = DC.model_copy(deep=True)
        ctl.dc.hosts["esx01"].vmknics["vmk1"].mtu = 1400
        assert rec.heard(12345) == {"have": rec._have[0] if rec._have else None}
        assert rec.heard(12345) is None  # asked once per generation
        rec.offer(None)  # the heartbeat fetched nothing: the pass fetches itself
        time.sleep(0.3)
        assert len(calls) == 1 and _vmk1(backend.state, "esx01").mtu == 9000
        guard.held = False  # released: the pass runs and converges to the new state
        assert _until(lambda: _vmk1(backend.state, "esx01").mtu == 1400, 5)
        assert rec.realised != first and rec.error is None
    finally:
        rec.stop()


def test_the_kill_point_is_read_from_the_environment_only_when_asked() -> None:
    assert faults.parse("realise:3") == 3
    for bad in ("", "realise:0", "realise:x", "undo:2", "realise"):
        assert faults.parse(bad) is None
    factory = MemoryBackend
    assert faults.backend(factory) is factory  # unset: nothing wrapped


class Counting(MemoryBackend):
    def __init__(self, state: KernelState) -> None:
        super().__init__(state)
        self.reads = 0

    def read(self, prefix: str) -> KernelState:
        self.reads += 1
        return super().read(prefix)


def test_a_new_generation_that_leaves_the_host_alone_reads_no_kernel() -> None:
    backend = Counting(WHOLE)
    ctl = Ctl(DC)
    rec = _reconciler("esx01", ctl, backend, Guard("esx01"), [])
    assert rec.run_once() and backend.reads == 1
    ctl.dc = DC.model_copy(deep=True)
    ctl.dc.hosts["esx02"].vmknics["vmk1"].mtu = 1400  # another host's change
    assert rec.run_once(due=False) and backend.reads == 1
    assert rec.realised == ctl_desired.generation(ctl.inventory)[0]
    assert rec.run_once(due=True) and backend.reads == 2  # the timer reads: drift by hand
    ctl.dc = ctl.dc.model_copy(deep=True)  # a new inventory (one object per version)
    ctl.dc.hosts["esx01"].vmknics["vmk1"].mtu = 1400  # its own: read, plan, run
    assert rec.run_once(due=False) and backend.reads == 3
    assert _vmk1(backend.state, "esx01").mtu == 1400


def _fetching(ctl: Ctl, backend: MemoryBackend) -> tuple[Reconciler, list[str | None]]:
    """A reconciler of esx01 whose own fetches (the `have` each sent) are recorded."""
    fetched: list[str | None] = []

    def fetch(have: str | None) -> dict[str, Any]:
        fetched.append(have)
        return ctl_desired.desired(ctl, "esx01", {"lab": LAB, "have": have})

    rec = Reconciler(LAB, "esx01", Guard("esx01"), threading.Lock(), fetch, lambda r: None,
                     lambda: backend, lambda: [("198.18.0.11", "vmk0")])
    return rec, fetched


def test_a_pass_uses_the_state_the_heartbeat_fetched_when_it_is_still_news() -> None:
    backend = MemoryBackend(WHOLE)
    ctl = Ctl(DC)
    rec, fetched = _fetching(ctl, backend)
    assert rec.run_once() and len(fetched) == 1
    ctl.dc = DC.model_copy(deep=True)
    ctl.dc.hosts["esx01"].vmknics["vmk1"].mtu = 1400
    new = ctl_desired.generation(ctl.inventory)[0]
    ask = rec.heard(new)
    assert ask is not None
    rec.offer(ctl_desired.desired(ctl, "esx01", {"lab": LAB, **ask}))
    assert rec.run_once(due=False) and len(fetched) == 1  # no second connection
    assert _vmk1(backend.state, "esx01").mtu == 1400 and rec.realised == new
    rec.offer({"generation": new - 1, "same": True})  # stale: ignored, fetched afresh
    assert rec.run_once() and len(fetched) == 2


def test_an_offer_no_pass_took_in_time_is_history(monkeypatch: pytest.MonkeyPatch) -> None:
    """Seen in the demo: a prefetched state offered while a pass had fetched already
    stayed on offer; heartbeats then cut by a change being rolled back left `told` at
    that generation, and a later timer pass realised the superseded state."""
    backend = MemoryBackend(WHOLE)
    ctl = Ctl(DC)
    rec, fetched = _fetching(ctl, backend)
    old = ctl_desired.generation(ctl.inventory)[0]
    assert rec.heard(old) is not None
    rec.offer(ctl_desired.desired(ctl, "esx01", {"lab": LAB}))  # the old state, offered
    ctl.dc = DC.model_copy(deep=True)  # committed since; no heartbeat heard it (cut)
    ctl.dc.hosts["esx01"].vmknics["vmk1"].mtu = 1400
    clock = [time.monotonic()]
    monkeypatch.setattr(reconcile.time, "monotonic", lambda: clock[0])
    clock[0] += reconcile.OFFER_TTL + 0.5
    assert rec.run_once() and len(fetched) == 1  # not taken: fetched afresh
    assert _vmk1(backend.state, "esx01").mtu == 1400
