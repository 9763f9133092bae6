"""FDM's pure parts: the election, the verdicts, restart order and placement, protection,
the settings from the controller, and the cluster's HA options in the model."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from vmknet.errors import InvalidArgument
from vmknet.ha import config, datastore, election, restart, verdicts
from vmknet.ha.restart import Vm
from vmknet.model import Cluster

MiB = 1 << 20


def test_the_host_with_the_most_datastores_wins_then_the_highest_name() -> None:
    c = election.Candidate
    assert election.elect([c("esx01", 2), c("esx02", 1), c("esx03", 2)]) == "esx03"
    assert election.elect([c("esx01", 3), c("esx03", 2)]) == "esx01"
    assert election.elect([]) is None


def test_a_primary_that_is_heard_stays_even_if_a_better_host_joins() -> None:
    c = election.Candidate
    assert election.elect([c("esx01", 1, True), c("esx09", 5)]) == "esx01"
    # two primaries (a partition healed): the better one stays
    assert election.elect([c("esx01", 1, True), c("esx02", 1, True)]) == "esx02"


@given(st.lists(st.tuples(st.sampled_from(["a", "b", "c", "d"]), st.integers(0, 3),
                          st.booleans()), min_size=1, max_size=6, unique_by=lambda t: t[0]))
def test_every_host_that_hears_the_same_set_elects_the_same_primary(
        pool: list[tuple[str, int, bool]]) -> None:
    cands = [election.Candidate(*t) for t in pool]
    assert election.elect(cands) == election.elect(list(reversed(cands)))
    assert election.elect(cands) in {t[0] for t in pool}


def test_heartbeat_datastores_prefer_the_ones_every_host_mounts() -> None:
    mounts = {"h1": ["a", "b", "local1"], "h2": ["a", "b", "z"], "h3": ["b", "z"]}
    assert election.heartbeat_datastores(mounts, "h1", 2) == ["b", "a"]
    assert election.heartbeat_datastores(mounts, "h3", 2) == ["b", "z"]


def _obs(links: dict[tuple[str, str], float], moves: tuple[float, ...] = (),
         isolated: bool = False, pinged: bool | None = None) -> verdicts.Observed:
    return verdicts.Observed(links, moves, isolated, pinged, since=0.0)


def test_one_live_link_of_two_is_no_verdict() -> None:
    links = {("198.18.0.11", "198.18.0.12"): 100.0, ("198.18.1.11", "198.18.1.12"): 90.0}
    assert verdicts.verdict(_obs(links), 101.0) == verdicts.LIVE
    assert verdicts.live_links(_obs(links), 101.0) == [("198.18.0.11", "198.18.0.12")]


def test_failed_isolated_partitioned_unreachable() -> None:
    links = {("a", "b"): 100.0}
    late = 100.0 + verdicts.FAIL_AFTER + 1
    assert verdicts.verdict(_obs(links), late) == verdicts.SUSPECT  # not pinged yet
    assert verdicts.verdict(_obs(links, pinged=False), late) == verdicts.FAILED
    assert verdicts.verdict(_obs(links, pinged=True), late) == verdicts.UNREACHABLE
    moving = (101.0, 102.0, 103.0)
    assert verdicts.verdict(_obs(links, moving), late) == verdicts.PARTITIONED
    assert verdicts.verdict(_obs(links, moving, isolated=True), late) == verdicts.ISOLATED


def test_the_last_write_of_a_host_that_died_is_no_sign_of_life() -> None:
    links = {("a", "b"): 100.0}
    one = (101.0,)  # its last write, seen by the next read after its last heartbeat
    assert verdicts.verdict(_obs(links, one, pinged=False), 103.1) == verdicts.SUSPECT
    assert verdicts.verdict(_obs(links, one, pinged=False), 103.6) == verdicts.FAILED
    stopped = (98.0, 99.0, 100.5)  # moved before, stopped with the network
    assert verdicts.verdict(_obs(links, stopped, pinged=False), 103.2) == verdicts.FAILED


def test_a_fresh_observer_does_not_judge_before_it_could_have_heard() -> None:
    obs = verdicts.Observed({}, (), False, False, since=50.0)
    assert verdicts.verdict(obs, 51.0) == verdicts.SUSPECT
    assert verdicts.verdict(obs, 50.0 + verdicts.FAIL_AFTER + 0.1) == verdicts.FAILED


@given(st.lists(st.floats(0, 200), max_size=6), st.floats(0, 200), st.floats(0, 300),
       st.booleans())
def test_a_host_heard_within_fail_after_is_never_judged(
        moves: list[float], heard: float, now: float, pinged: bool) -> None:
    obs = _obs({("a", "b"): heard}, tuple(sorted(moves)), pinged=pinged)
    state = verdicts.verdict(obs, now)
    if heard <= now <= heard + verdicts.FAIL_AFTER:
        assert state == verdicts.LIVE
    if state == verdicts.FAILED:  # never while its datastore heartbeat moves
        assert not verdicts.datastore_recent(obs, now) and not pinged


PRIO = {"db": "highest", "web": "low", "scratch": "disabled"}


def _prio(vm: str) -> str:
    return PRIO.get(vm, "medium")


def test_restart_order_is_by_priority_and_disabled_vms_stay_down() -> None:
    vms = [Vm("web", MiB), Vm("app", MiB), Vm("db", MiB), Vm("scratch", MiB)]
    placed, refused = restart.place(vms, {"h2": 0, "h3": 0}, 100 * MiB, _prio)
    assert [v.name for v, _ in placed] == ["db", "app", "web"]
    assert refused == [(Vm("scratch", MiB), "restart priority disabled")]
    assert {h for _, h in placed} == {"h2", "h3"}  # spread by free memory


def test_a_vm_that_fits_nowhere_is_refused_with_the_reason() -> None:
    placed, refused = restart.place([Vm("big", 50 * MiB), Vm("small", MiB)],
                                    {"h2": 60 * MiB}, 100 * MiB, _prio)
    assert placed == [(Vm("small", MiB), "h2")]
    assert refused[0][0].name == "big" and "memory" in refused[0][1]


@given(st.lists(st.integers(1, 64), max_size=12), st.integers(1, 4))
def test_placement_never_overcommits_a_host(sizes: list[int], hosts: int) -> None:
    vms = [Vm(f"vm{i}", s * MiB) for i, s in enumerate(sizes)]
    used = {f"h{i}": 0 for i in range(hosts)}
    placed, refused = restart.place(vms, used, 100 * MiB, lambda _v: "medium")
    for h in used:
        assert sum(v.memory for v, t in placed if t == h) <= 100 * MiB
    assert len(placed) + len(refused) == len(vms)


def test_a_vm_whose_disk_is_on_a_local_datastore_cannot_restart_elsewhere() -> None:
    local = Vm("loc", MiB, 0, '{"kind": "local", "owner": "h1", "datastore": "ds1"}')
    shared = Vm("nfs", MiB, 0, '{"kind": "nfs", "owner": "", "datastore": "nfs01"}')
    placed, refused = restart.place([local, shared], {"h2": 0}, 100 * MiB, _prio)
    assert placed == [(shared, "h2")]
    assert refused == [(local, "its disk is on h1's local datastore")]
    prot = restart.protection({"loc": local, "nfs": shared}, 2, 100 * MiB, 25, True, _prio)
    assert prot == {"loc": "its disk is on h1's local datastore", "nfs": None}


def test_protection_says_why_not() -> None:
    vms = {"a": Vm("a", 3000 * MiB), "scratch": Vm("scratch", MiB)}
    prot = restart.protection(vms, 2, 4096 * MiB, 25, True, _prio)
    assert prot["scratch"] == "restart priority disabled"
    assert prot["a"] is None
    over = restart.protection(vms | {"b": Vm("b", 4000 * MiB)}, 2, 4096 * MiB, 25, True, _prio)
    assert over["a"] is not None and "admission control" in over["a"]
    assert "no other host" in str(restart.protection(vms, 1, 4096 * MiB, 25, True, _prio)["a"])


def _part(**over: Any) -> dict[str, Any]:
    return {"cluster": "c1", "key": "ab" * 32,
            "members": {"h1": {"addresses": ["198.18.0.11"], "datastores": [
                {"name": "nfs01", "server": "198.18.31.100", "share": "/share",
                 "version": "3", "vmk": "vmk2", "source": "198.18.31.11"}]},
                        "h2": {"addresses": ["198.18.0.12", "198.18.1.12"], "datastores": []}},
            "isolationAddresses": ["198.18.0.250"], "isolationResponse": "powerOff",
            "restartPriority": "medium", "vmRestartPriority": {"db": "high"},
            "heartbeatDatastores": 2,
            "admission": {"enabled": True, "failoverPercent": 25, "hostMemory": 4 << 30}} | over


def test_the_controllers_settings_parse() -> None:
    cfg = config.parse(_part(), "h1")
    assert cfg.peers() == ["h2"] and cfg.key == bytes([0xab]) * 32
    assert cfg.priority("db") == "high" and cfg.priority("x") == "medium"
    assert cfg.members["h2"].addresses == ("198.18.0.12", "198.18.1.12")


@pytest.mark.parametrize("over", [
    {"key": "zz" * 32}, {"key": "ab"}, {"isolationResponse": "reboot"},
    {"isolationAddresses": ["not-an-ip"]}, {"members": {}}, {"heartbeatDatastores": 9},
    {"vmRestartPriority": {"x": "urgent"}}, {"admission": {"enabled": True}}, {"extra": 1},
    {"members": {"h1": {"addresses": [], "datastores": []}}},
])
def test_bad_settings_are_refused(over: dict[str, Any]) -> None:
    with pytest.raises(InvalidArgument):
        config.parse(_part(**over), "h1")


def test_a_host_not_among_the_members_is_refused() -> None:
    with pytest.raises(InvalidArgument):
        config.parse(_part(), "h9")


def test_the_model_keeps_vsphere_names_and_refuses_unknown_das_options() -> None:
    cl = Cluster.model_validate({"ha": True, "hosts": ["h1"], "das": {
        "isolationResponse": "shutdown", "vmRestartPriority": {"db": "highest"},
        "options": {"das.isolationaddress0": "198.18.0.1", "das.isolationaddress1": "2001:db8::1",
                    "das.usedefaultisolationaddress": "false", "das.heartbeatdsperhost": "3"}}})
    assert cl.das.isolation_addresses() == ["198.18.0.1", "2001:db8::1"]
    assert not cl.das.use_default_isolation_address()
    assert cl.das.heartbeat_datastores() == 3
    assert cl.das.priority("db") == "highest" and cl.das.priority("x") == "medium"
    for bad in ({"das.isolationaddress0": "gw"}, {"das.heartbeatdsperhost": "1"},
                {"das.isolationadress0": "198.18.0.1"}, {"das.usedefaultisolationaddress": "y"}):
        with pytest.raises(ValidationError):
            Cluster.model_validate({"das": {"options": bad}})


def test_a_datastore_heartbeat_moves_only_when_its_sequence_changes(tmp_path: Any) -> None:
    store = datastore.DirStore("nfs01", tmp_path)
    path = datastore.hb_path("c1", "h2")
    store.write(path, datastore.beat("h2", 1, False, [], []))
    seen = datastore.look(store, "c1", "h2", datastore.Seen(), 10.0)
    assert seen.seq == 1 and seen.moved is None and seen.moves == ()
    assert datastore.look(store, "c1", "h2", seen, 11.0).moved is None  # same file
    store.write(path, datastore.beat("h2", 2, True, [], [{"name": "vm1", "memory": 1,
                                                          "dirtyRate": 0}]))
    moved = datastore.look(store, "c1", "h2", seen, 12.0)
    assert moved.moved == 12.0 and moved.moves == (12.0,) and moved.isolated
    assert moved.powered_off[0]["name"] == "vm1"
    store.write(path, b"{not json")
    assert datastore.look(store, "c1", "h2", moved, 13.0) == moved
    store.write(datastore.hb_path("c1", "h3"), datastore.beat("h2", 5, False, [], []))
    assert datastore.look(store, "c1", "h3", datastore.Seen(), 14.0).seq is None  # not its own
