"""vSAN in a real lab (steps 1-2 of docs/vsan.md): unicast membership between the vSAN
adapters (VSAN-1) with one master and one backup, peers without the key refused, and
the vsanDatastore's mirrored object I/O from a host that holds no replica (VSAN-2),
on the vSAN adapters only (SEC-3)."""

from __future__ import annotations

import hashlib
import os
import socket
from collections.abc import Iterator

import pytest
from vsankit import HOSTS, VsanLab, converged, vsan_lab, wait_for

from vmknet.dataplane.linux import netns
from vmknet.lab.registry import security_log
from vmknet.processes import lab_argvs
from vmknet.traffic.place import stack_ns
from vmknet.traffic.sockets import tcp_socket
from vmknet.traffic.stats import adapter_counters
from vmknet.trust import audit
from vmknet.vsan import objects, open_object, paths, procs, wire
from vmknet.vsan.objects import node_states

MiB = 1 << 20


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[VsanLab]:
    with vsan_lab(tmp_path_factory.mktemp("vsan")) as lab:
        yield lab


def test_membership_roles_and_unicast_peer_lists(env: VsanLab) -> None:
    states = node_states(env.lab, HOSTS)
    roles = sorted(s["role"] for s in states.values())
    assert roles == ["agent", "agent", "backup", "master"]
    assert {s["master"] for s in states.values()} == {"esx01"}
    for host, argv in ((h, a) for a in lab_argvs(procs.MARKER, env.lab).values()
                       for h in [next(x[7:].decode() for x in a if x.startswith(b"--host="))]):
        peers = [x.decode().split("=", 1)[1].split(",")[0] for x in argv
                 if x.startswith(b"--peer=")]
        assert sorted(peers) == sorted(set(HOSTS) - {host})  # VSAN-1: never itself
        assert states[host]["dropped"] == 0


def test_a_peer_without_the_key_is_refused_and_recorded(env: VsanLab) -> None:
    sock = tcp_socket(stack_ns(env.lab, "esx03", "defaultTcpipStack"), socket.AF_INET)
    sock.settimeout(5)
    with sock:
        sock.bind(("198.18.50.13", 0))
        sock.connect(("198.18.50.11", wire.IO_PORT))
        with pytest.raises((wire.AuthError, ConnectionError, OSError)):
            wire.client_handshake(sock, b"\0" * 32, "cl01", "esx03")
    wait_for("refusal recorded", lambda: any(
        r.get("service") == "vsan" for r in audit.read(security_log(env.lab))), 5)
    forged = wire.seal(b"\0" * 32, {"c": "cl01", "h": "esx03", "b": "x", "s": 1, "v": []})
    udp = netns.in_netns(stack_ns(env.lab, "esx03", "defaultTcpipStack"),
                         lambda: socket.socket(socket.AF_INET, socket.SOCK_DGRAM))
    with udp:
        udp.bind(("198.18.50.13", 0))
        udp.sendto(forged, ("198.18.50.11", wire.HB_PORT))
    wait_for("forged heartbeat dropped",
             lambda: node_states(env.lab, ("esx01",))["esx01"]["dropped"] >= 1, 5)
    assert converged(env.lab)


def test_mirrored_io_from_a_host_without_a_replica(env: VsanLab) -> None:
    meta = objects.create(env.dc, env.lab, "cl01", "disk-io", 32 * MiB, 1)
    holders = {c.host for c in meta.components}
    assert len(holders) == 3 and [c.kind for c in meta.components].count("witness") == 1
    outsider = next(h for h in HOSTS if h not in holders)
    before = {h: adapter_counters(env.dc, env.lab, h) for h in HOSTS}
    blocks = {i * MiB: os.urandom(MiB) for i in range(0, 32, 3)}
    with open_object(env.lab, outsider, meta.uuid) as disk:
        assert disk.size == 32 * MiB
        for off, data in blocks.items():
            disk.write(off, data)
        disk.flush()
        for off, data in blocks.items():
            assert disk.read(off, MiB) == data
    digests = set()
    for c in meta.replicas():
        with open(paths.component_path(env.lab, c.host, meta.uuid, c.id), "rb") as f:
            digests.add(hashlib.sha256(f.read()).hexdigest())
    assert len(digests) == 1  # both replicas hold every acknowledged write
    after = {h: adapter_counters(env.dc, env.lab, h) for h in HOSTS}
    sent = after[outsider]["vmk1"].tx_bytes - before[outsider]["vmk1"].tx_bytes
    assert sent >= 2 * len(blocks) * MiB  # each write to both replicas, over vmk1 (vSAN)
    mgmt = after[outsider]["vmk0"].tx_bytes - before[outsider]["vmk0"].tx_bytes
    assert mgmt < MiB  # SEC-3: none of it on the management adapter
    with open_object(env.lab, meta.replicas()[0].host, meta.uuid) as local:
        assert local.read(0, MiB) == blocks[0]  # a holder reads its own replica
    objects.delete(env.dc, env.lab, meta)
    wait_for("components deleted", lambda: not any(
        any(paths.disk_dir(env.lab, h).glob(f"{meta.uuid}*")) for h in HOSTS), 5)
