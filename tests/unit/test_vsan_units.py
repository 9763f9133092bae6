"""vSAN's pure parts and its wire: placement (VSAN-2), the key handshake and sealed
heartbeats (every peer proves the key, every length checked), dirty bitmaps, the
object directory's generations, and each node's peer list (VSAN-1)."""

from __future__ import annotations

import json
import socket
import threading
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vmknet.errors import InvalidArgument, ResourceInUse
from vmknet.state import load_file
from vmknet.vsan import config, directory, placement, wire
from vmknet.vsan.directory import Component, ObjectMeta
from vmknet.vsan.disk import BLOCK, Bitmap, LocalDisk

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "vsan-lab.yaml"
HOSTS = st.lists(st.sampled_from([f"esx{i:02}" for i in range(1, 9)]), min_size=1,
                 max_size=8, unique=True)


@settings(max_examples=200, deadline=None)
@given(hosts=HOSTS, data=st.data(), size=st.integers(1, 1 << 30), ftt=st.sampled_from([0, 1]))
def test_placement_puts_replicas_and_witness_on_distinct_live_hosts_with_room(
        hosts: list[str], data: st.DataObject, size: int, ftt: int) -> None:
    alive = data.draw(st.sets(st.sampled_from(hosts)))
    free = {h: data.draw(st.integers(0, 2 << 30)) for h in hosts}
    try:
        got = placement.place(ftt, size, hosts, free, alive)
    except ResourceInUse:
        roomy = [h for h in hosts if h in alive and free[h] >= size]
        assert len(roomy) < ftt + 1 or (ftt == 1 and len([h for h in hosts if h in alive]) < 3)
        return
    assert len(got.replicas) == ftt + 1
    placed = [*got.replicas, *([got.witness] if got.witness else [])]
    assert len(set(placed)) == len(placed)  # never two components of one object on a host
    assert all(h in alive for h in placed)
    assert all(free[h] >= size for h in got.replicas)
    assert (got.witness is not None) == (ftt == 1)
    assert got == placement.place(ftt, size, hosts, free, alive)  # deterministic


def test_placement_two_host_cluster_puts_the_witness_on_the_witness_host() -> None:
    got = placement.place(1, 10, ["a", "b"], {"a": 99, "b": 99}, {"a", "b", "w"}, "w")
    assert got == placement.Placed(("a", "b"), "w")
    with pytest.raises(ResourceInUse):
        placement.place(1, 10, ["a", "b"], {"a": 99, "b": 99}, {"a", "b"})
    with pytest.raises(InvalidArgument):
        placement.place(2, 10, ["a", "b", "c"], {}, set())


def test_rebuild_avoids_hosts_holding_a_component() -> None:
    free = {"a": 50, "b": 90, "c": 10, "d": 60}
    assert placement.rebuild_host(20, free, free, set(free), {"b"}) == "d"
    assert placement.rebuild_host(20, free, free, {"a", "b"}, {"a", "b"}) is None


def _pair() -> tuple[socket.socket, socket.socket]:
    a, b = socket.socketpair()
    a.settimeout(5)
    b.settimeout(5)
    return a, b


def test_handshake_admits_the_key_and_refuses_another() -> None:
    key = b"k" * 32
    for client_key, ok in ((key, True), (b"x" * 32, False)):
        a, b = _pair()
        got: dict[str, object] = {}

        def serve(sock: socket.socket = a, got: dict[str, object] = got) -> None:
            try:
                got["host"] = wire.server_handshake(sock, key, "cl01")
            except wire.AuthError as err:
                got["err"] = err
                sock.close()

        t = threading.Thread(target=serve)
        t.start()
        if ok:
            wire.client_handshake(b, client_key, "cl01", "esx02")
        else:
            with pytest.raises((wire.AuthError, ConnectionError, OSError)):
                wire.client_handshake(b, client_key, "cl01", "esx02")
        t.join(5)
        assert ("host" in got) is ok
        if ok:
            assert got["host"] == "esx02"
        else:
            assert isinstance(got["err"], wire.AuthError)
        b.close()


def test_frame_lengths_are_checked_before_reading() -> None:
    a, b = _pair()
    a.sendall(wire.LEN.pack(wire.MAX_HEAD + 1))
    with pytest.raises(ValueError, match="exceeds"):
        wire.recv(b)
    a.sendall(wire.LEN.pack(13) + b'{"n":1073741824}'[:13])
    a.sendall(wire.LEN.pack(16) + b'{"n":1073741824}')
    with pytest.raises(ValueError):
        wire.recv(b)
    a.close()
    b.close()


@settings(max_examples=200)
@given(body=st.dictionaries(st.text(max_size=5), st.integers(), max_size=5),
       flip=st.integers(0, 10_000))
def test_sealed_heartbeats_open_only_with_the_key_and_unaltered(body: dict[str, int],
                                                                 flip: int) -> None:
    key = b"s" * 32
    sealed = wire.seal(key, body)
    assert wire.unseal(key, sealed) == body
    assert wire.unseal(b"t" * 32, sealed) is None
    bad = bytearray(sealed)
    bad[flip % len(bad)] ^= 1
    assert wire.unseal(key, bytes(bad)) is None
    assert wire.unseal(key, sealed[:wire.MAC]) is None
    assert wire.unseal(key, b"x" * (wire.MAX_DATAGRAM + 1)) is None


def test_bitmap_marks_runs_and_survives_reopening(tmp_path: Path) -> None:
    path = tmp_path / "m"
    bm = Bitmap(path, 100 * BLOCK + 1)
    assert bm.blocks == 101
    bm.mark(BLOCK - 1, 2)  # straddles blocks 0 and 1
    bm.mark(50 * BLOCK, 70 * BLOCK, sync=True)  # blocks 50..119 clipped to the last
    assert bm.runs(64)[0] == (0, 2)
    assert sum(n for _, n in bm.runs(8)) == bm.count() == 2 + 51
    assert len(bm.bits) == 101 and max(n for _, n in bm.runs(8)) == 8
    bm.clear(0, 1)
    bm.close()
    again = Bitmap(path, 100 * BLOCK + 1)
    assert again.count() == 1 + 51 and again.bits[1] == 1


def test_disk_tracks_writes_for_absent_replicas(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VMKNET_RUN_DIR", str(tmp_path))
    uuid = directory.new_uuid()
    disk = LocalDisk("t", "esx01")
    disk.create(uuid, "c0", 4 * BLOCK, "replica")
    disk.write(uuid, "c0", BLOCK + 5, b"abc", track=["c1"])
    assert disk.read(uuid, "c0", BLOCK + 5, 3) == b"abc"
    assert disk.bitmap(uuid, "c0", "c1").runs(64) == [(1, 1)]
    assert disk.data_blocks(uuid, "c0") == [1]
    with pytest.raises(InvalidArgument):
        disk.write(uuid, "c0", 4 * BLOCK - 1, b"xy")
    assert disk.bitmaps() == [(uuid, "c0", "c1")]
    disk.delete(uuid, "c0")
    assert disk.components() == [] and disk.bitmaps() == []


def test_directory_generation_grows_only_on_change(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VMKNET_RUN_DIR", str(tmp_path))
    meta = ObjectMeta(directory.new_uuid(), "d", 10, 1, "cl01",
                      components=[Component("c0", "a", "replica"),
                                  Component("c1", "b", "replica"),
                                  Component("c2", "c", "witness")])
    directory.save("t", meta)
    cache = directory.Cache("t")
    with directory.locked("t", meta.uuid):
        pass
    assert cache.get(meta.uuid).gen == 1
    with directory.locked("t", meta.uuid) as m:
        m.comp("c1").state = "absent"
    assert cache.get(meta.uuid).gen == 2
    assert cache.get(meta.uuid).health() == "reduced-availability"
    assert meta.next_id() == "c3"


def test_peer_lists_never_name_the_host_itself() -> None:
    dc = load_file(EXAMPLE)
    cv = config.view(dc, "cl01")
    for host in cv.members:
        peers = config.peers(dc, cv, host)
        assert {p.host for p in peers} == set(cv.members) - {host}  # VSAN-1
        assert all(p.address.startswith("198.18.50.") for p in peers)
        routes = config.routes(dc, cv, host)
        assert config.Route.parse(routes["esx01"].arg()) == routes["esx01"]


def test_bench_lab_sets_the_vsan_uplink_speed_and_lints_clean() -> None:
    import sys

    sys.path.insert(0, str(EXAMPLE.parents[1] / "bench"))
    import bench_vsan
    from vmknet.rules.lint import lint
    from vmknet.state import loads

    dc = loads(bench_vsan.lab_text(1000, 512))
    assert all(dc.host(h).nics["vmnic2"].speed == 1000 for h in bench_vsan.ADDRESS)
    assert dc.clusters["cl01"].vsan_config.capacity == 1024 << 20
    assert not [f for f in lint(dc) if f.severity == "error"]
    assert {str(dc.host(h).vmknics["vmk1"].ipv4.address.ip) for h in bench_vsan.ADDRESS} \
        == set(bench_vsan.ADDRESS.values())


def test_the_agent_kind_takes_the_node_arguments_and_never_puts_the_key_on_argv() -> None:
    from vmknet.controller.processes import _check_vsan
    from vmknet.errors import InvalidArgument as Invalid
    from vmknet.supervise import kinds
    from vmknet.supervise.scan import parse
    from vmknet.vsan import procs
    from vmknet.vsan.node import _parser

    dc = load_file(EXAMPLE)
    key = b"\x07" * 32
    args = procs.agent_args(dc, "L", "cl01", "esx02", key)
    module, argv = kinds.command("vsan", "esx02", args, "L", "esx02")
    assert module == "vmknet.vsan.node" and key.hex() not in " ".join(argv)
    parsed = _parser().parse_args([*argv, "--io-fds=3"])
    peers = json.loads(parsed.peers_json)
    assert sorted(p.split(",")[0] for p in peers) == ["esx01", "esx03", "esx04"]  # VSAN-1
    assert [w.port for w in kinds.sockets("vsan", args)] == [wire.IO_PORT]
    rec = parse(1, ["python3", "-m", module, *argv], "L")  # a restarted agent adopts it
    assert rec is not None and (rec.kind, rec.name, rec.host) == ("vsan", "esx02", "esx02")
    _check_vsan(dc, "esx02", args)  # the controller: vmk1 is esx02's vSAN adapter
    for bad in ({**args, "key": "00"}, {**args, "peers": json.dumps(["esx01,x"])},
                {**args, "members": "esx01,../x"}):
        with pytest.raises(Invalid):
            kinds.command("vsan", "esx02", bad, "L", "esx02")
    with pytest.raises(Invalid):  # one node per host, named after it
        kinds.command("vsan", "esx01", args, "L", "esx02")
    others = json.dumps(json.loads(args["peers"])[:-1])  # a list the controller did not give
    with pytest.raises(Invalid, match="VSAN-1"):
        _check_vsan(dc, "esx02", {**args, "peers": others})
    mgmt = [{"stack": "defaultTcpipStack", "address": "198.18.0.12"}]
    with pytest.raises(Invalid, match="not a vSAN adapter"):
        _check_vsan(dc, "esx02", {**args, "io": mgmt})
