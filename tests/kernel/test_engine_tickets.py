"""SEC-4 in the kernel: a stranger at an engine port is refused, recorded, and changes nothing.

Engines: NFC (TCP 902 on esx02), the replication server (TCP 44046 on esx04) and the
replica NFC endpoint (902 on esx03), the incoming vMotion VM (control 8001 on the
target's management adapter, streams 8000 on its vMotion adapters). Strangers: a socket
in another host's management stack (esx05, 198.18.0.15), one in a stack on the same
VLAN that is no engine's peer (the controller namespace on VLAN 10; esx02's vMotion
stack on VLAN 40 for the streams). Each comes without a ticket (engine bytes at once),
with a replayed exchange (the bytes a legitimate client sent, captured, sent again),
and with a real ticket issued for another operation, kind or host. Every one is
refused and recorded in the lab's security log; files, replicas and the VM inventory
are byte-identical; the legitimate operation completes afterwards. A capture of the
target's management stack during an encrypted vMotion never holds the key.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import pytest
from labkit import lab_name
from traffickit import wait_path
from vmotionkit import VMOTION_LAB, vm_processes

from vmknet.dataplane import naming
from vmknet.inventory import Inventory
from vmknet.lab import lifecycle
from vmknet.lab.registry import security_log
from vmknet.model import DEFAULT_STACK, Datacenter
from vmknet.nfc import Datastores, NfcServer, copy_file
from vmknet.nfc import protocol as nfcp
from vmknet.provision import files
from vmknet.replication import (
    ReplicaNfc,
    ReplicationConfig,
    ReplicationServer,
    SourceAgent,
    state_dir,
    wire,
)
from vmknet.replication.cbt import disk_digest
from vmknet.traffic.place import stack_ns
from vmknet.traffic.sockets import tcp_socket
from vmknet.trust import audit
from vmknet.trust.issuer import issuer_for
from vmknet.trust.pki import TrustError
from vmknet.trust.tickets import CHALLENGE, REFUSED, Ticket, present
from vmknet.vm import manage
from vmknet.vm.reaper import kill_lab_vms
from vmknet.vmotion import crypto, migrate
from vmknet.vmotion import orchestrate as vmotion_orchestrate

MiB = 1 << 20
MEMORY = 16 << 20
RATE = 5_000_000
REPLY_WAIT = 6.0  # s: above the handshake timeout (5 s) a silent server would take


@dataclass
class Env:
    inv: Inventory
    dc: Datacenter
    lab: str
    stores: Datastores
    folder: Path

    def ns(self, host: str, stack: str = DEFAULT_STACK) -> str:
        return stack_ns(self.lab, host, stack)

    @property
    def controller(self) -> tuple[str, str]:
        return naming.controller_ns(self.lab), "198.18.0.250"

    @property
    def other_host(self) -> tuple[str, str]:
        return self.ns("esx05"), "198.18.0.15"


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    folder = tmp_path_factory.mktemp("tickets")
    (folder / "lab.yaml").write_text(VMOTION_LAB, encoding="utf-8")
    inv = Inventory.open(folder / "inventory.db")
    name = lab_name()
    stores = Datastores(folder / "datastores")
    for host in ("esx01", "esx02", "esx03"):
        stores.create(name, host, "ds1")
    try:
        lifecycle.up(inv, folder / "lab.yaml", name)
        for host, target in (("esx05", "198.18.0.12"), ("esx01", "198.18.0.14"),
                             ("esx04", "198.18.0.13"), ("esx02", "198.18.0.11")):
            wait_path(name, host, DEFAULT_STACK, target)
        yield Env(inv, inv.read(), name, stores, folder)
    finally:
        kill_lab_vms(name)
        lifecycle.down(inv, name)
        assert vm_processes(name) == [], "a VM process survived lab down"


# ------------------------------------------------------------------ strangers


def dial(where: tuple[str, str], address: str, port: int) -> socket.socket:
    """A TCP connection from a namespace and source address the test picks (the stranger)."""
    ns, source = where
    sock = tcp_socket(ns, socket.AF_INET)
    sock.settimeout(REPLY_WAIT)
    sock.bind((source, 0))
    sock.connect((address, port))
    return sock


def rest(sock: socket.socket) -> bytes:
    """Everything the server still sends until it closes (it must close in time)."""
    got = bytearray()
    with contextlib.suppress(ConnectionResetError, BrokenPipeError):
        while chunk := sock.recv(65536):
            got += chunk
    return bytes(got)


def no_ticket(where: tuple[str, str], address: str, port: int, engine: bytes) -> bytes:
    """A stranger sends an engine's first message at once; what the server answers."""
    assert len(engine) >= 38, "at least a ticket HELLO's size, or the server waits for more"
    with dial(where, address, port) as sock:
        with contextlib.suppress(ConnectionResetError, BrokenPipeError):
            sock.sendall(engine)
        return rest(sock)


def with_ticket(where: tuple[str, str], address: str, port: int, ticket: Ticket,
                engine: bytes) -> bytes:
    """A stranger presents `ticket` (refused, or admitted and then dropped), then engine bytes;
    what the server sent after the ticket exchange (nothing: it closed)."""
    with dial(where, address, port) as sock:
        with contextlib.suppress(TrustError):
            present(sock, ticket)
        with contextlib.suppress(ConnectionResetError, BrokenPipeError):
            sock.sendall(engine)
        return rest(sock)


def replay(where: tuple[str, str], address: str, port: int, captured: bytes,
           engine: bytes) -> bytes:
    """The bytes a legitimate client sent in its ticket exchange, sent again, then engine bytes.

    The server answers the replayed HELLO with a refusal, or (its ticket still has a use)
    with a fresh challenge the replayed proof cannot match, then a refusal byte. Returns
    what came after that: nothing, it closed."""
    with dial(where, address, port) as sock:
        with contextlib.suppress(ConnectionResetError, BrokenPipeError):
            sock.sendall(captured)
            sock.sendall(engine)
        got = rest(sock)
    status, _, _ = CHALLENGE.unpack(got[:CHALLENGE.size])
    if status == REFUSED:
        return got[CHALLENGE.size:]
    assert got[CHALLENGE.size:CHALLENGE.size + 1] == bytes([REFUSED]), got
    return got[CHALLENGE.size + 1:]


class Recorder:
    """Wraps a socket for present(): keeps every byte the client sent (the capture)."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.sent = bytearray()

    def sendall(self, data: bytes) -> None:
        self.sent += data
        self.sock.sendall(data)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.sock, name)


def captured_exchange(where: tuple[str, str], address: str, port: int,
                      ticket: Ticket) -> bytes:
    """A legitimate client's ticket exchange, as a capture on the wire would hold it."""
    with dial(where, address, port) as sock:
        rec = Recorder(sock)
        present(cast(socket.socket, rec), ticket)
        return bytes(rec.sent)


def records(lab: str) -> list[dict[str, Any]]:
    return audit.read(security_log(lab), limit=10_000)


def wait_records(lab: str, count: int, limit: float = 10.0) -> list[dict[str, Any]]:
    """The security log once it holds `count` records (refusals are written by server threads)."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        got = records(lab)
        if len(got) >= count:
            time.sleep(0.3)  # and no more than that
            got = records(lab)
            assert len(got) == count, got[-(len(got) - count):]
            return got
        time.sleep(0.05)
    raise AssertionError(f"security log holds {len(records(lab))} records, expected {count}")


def tree_digest(root: Path) -> str:
    """Names, sizes and contents of every file under `root`."""
    h = hashlib.sha256()
    for folder, dirs, names in sorted(os.walk(root)):
        dirs.sort()
        for name in sorted(names):
            path = Path(folder) / name
            h.update(str(path.relative_to(root)).encode() + b"\0")
            h.update(path.read_bytes())
    return h.hexdigest()


def nfc_frame(op: nfcp.Op, data: dict[str, Any]) -> bytes:
    return nfcp.encode(op, 1, nfcp.to_json(data))


def expect_refused(lab: str, before: int, attempts: list[Callable[[], bytes]],
                   service: str, host: str) -> list[dict[str, Any]]:
    """Each attempt gets nothing of the engine; each leaves one record of `service`."""
    for attempt in attempts:
        assert attempt() == b"", "a stranger got an engine answer"
    new = wait_records(lab, before + len(attempts))[before:]
    assert {(r["service"], r["host"], r["rule"]) for r in new} == {(service, host, "SEC-4")}
    return new


# ------------------------------------------------------------------ NFC (902)


def test_nfc_refuses_strangers_then_copies(env: Env) -> None:
    src_root = env.stores.root(env.lab, "esx01", "ds1")
    dst_root = env.stores.root(env.lab, "esx02", "ds1")
    (src_root / "vm1").mkdir(exist_ok=True)
    (src_root / "vm1" / "disk.vmdk").write_bytes(os.urandom(3 * MiB))
    (dst_root / "keep").mkdir(exist_ok=True)
    (dst_root / "keep" / "disk.vmdk").write_bytes(os.urandom(MiB))
    esx02 = "198.18.0.12"
    with NfcServer(env.dc, env.lab, "esx02", env.stores):
        issuer = issuer_for(env.lab)
        legit = issuer.issue("nfc", "esx01", "esx02", uses=2)  # one use left for the replay
        captured = captured_exchange((env.ns("esx01"), "198.18.0.11"), esx02, nfcp.PORT, legit)
        before, tree = len(records(env.lab)), tree_digest(dst_root)
        delete = nfc_frame(nfcp.Op.DELETE, {"datastore": "ds1", "path": "keep/disk.vmdk"})
        hello = nfc_frame(nfcp.Op.HELLO, {"version": nfcp.VERSION, "host": "esx05",
                                          "capabilities": []})
        new = expect_refused(env.lab, before, [
            lambda: no_ticket(env.other_host, esx02, nfcp.PORT, hello + delete),
            lambda: no_ticket(env.controller, esx02, nfcp.PORT, delete),
            lambda: replay(env.other_host, esx02, nfcp.PORT, captured, hello + delete),
            lambda: replay(env.controller, esx02, nfcp.PORT, captured, delete),
            # real tickets, for another target host, another kind, the reverse direction
            lambda: with_ticket(env.other_host, esx02, nfcp.PORT,
                                issuer.issue("nfc", "esx01", "esx03"), hello + delete),
            lambda: with_ticket(env.controller, esx02, nfcp.PORT,
                                issuer.issue("replication", "esx01", "esx02"), hello + delete),
            lambda: with_ticket(env.other_host, esx02, nfcp.PORT,
                                issuer.issue("nfc", "esx02", "esx01"), hello + delete),
        ], "nfc", "esx02")
        assert [r["code"] for r in new] == ["NoTicket", "NoTicket", "BadTicket", "BadTicket",
                                            "BadTicket", "BadTicket", "BadTicket"]
        assert {r["peer"].split()[0] for r in new} == {"198.18.0.15", "198.18.0.250"}
        assert tree_digest(dst_root) == tree, "a refused stranger changed the datastore"
        report = copy_file(env.dc, env.lab, "esx01", "ds1", "vm1/disk.vmdk", "esx02", "ds1",
                           "vm1/disk.vmdk", stores=env.stores)
    assert (dst_root / "vm1" / "disk.vmdk").read_bytes() == \
        (src_root / "vm1" / "disk.vmdk").read_bytes()
    assert report.attempts == 1 and (dst_root / "keep" / "disk.vmdk").exists()
    assert len(records(env.lab)) == before + 7, "the legitimate copy was refused somewhere"


# ------------------------------------------------------------------ replication (44046, 902)


def test_replication_refuses_strangers_then_syncs(env: Env) -> None:
    p = files.create(env.dc, env.lab, "rep01", "esx01", disk=8 * MiB, memory=8 * MiB,
                     dirty_rate=0, disk_data=2 * MiB, stores=env.stores)
    vmx = files.read_vmx(p)
    disk = files.vm_dir(p) / vmx.disk
    cfg = ReplicationConfig(env.lab, "rep01", "esx01", "esx04", "esx03", str(disk),
                            p.datastore, f"rep01/{vmx.disk}", rpo=30.0)
    sd = state_dir(env.lab)
    replica = env.stores.root(env.lab, "esx03", p.datastore) / "rep01" / vmx.disk
    server_state = sd / "server-esx04.json"
    with ReplicaNfc(env.dc, env.lab, "esx03", env.stores), \
            ReplicationServer(env.dc, env.lab, "esx04", sd):
        agent = SourceAgent(cfg, env.dc, sd).start(schedule=False)
        try:
            assert agent.sync_now() is not None, agent.state.error
            image, state = replica.read_bytes(), server_state.read_bytes()
            issuer = issuer_for(env.lab)
            esx04, esx03 = "198.18.0.14", "198.18.0.13"
            legit = issuer.issue("replication", "esx01", "esx04", uses=2)
            captured = captured_exchange((env.ns("esx01"), "198.18.0.11"), esx04, wire.PORT,
                                         legit)
            # a delta that would zero the replica's first blocks and claim generation 99
            head = {"op": "delta", "vm": "rep01", "gen": 99, "taken": time.time(),
                    "blocks": [0, 1], "digest": None, "target": "esx03",
                    "datastore": p.datastore, "path": f"rep01/{vmx.disk}", "size": 8 * MiB}
            raw = json.dumps({**head, "data": 128 << 10}).encode()
            delta = wire.LEN.pack(len(raw)) + raw + bytes(128 << 10)
            before = len(records(env.lab))
            new = expect_refused(env.lab, before, [
                lambda: no_ticket(env.other_host, esx04, wire.PORT, delta),
                lambda: no_ticket(env.controller, esx04, wire.PORT, delta),
                lambda: replay(env.other_host, esx04, wire.PORT, captured, delta),
                lambda: with_ticket(env.controller, esx04, wire.PORT,
                                    issuer.issue("nfc", "esx01", "esx04"), delta),
                lambda: with_ticket(env.other_host, esx04, wire.PORT,
                                    issuer.issue("replication", "esx01", "esx02"), delta),
            ], "replication", "esx04")
            assert [r["code"] for r in new] == ["NoTicket", "NoTicket", "BadTicket",
                                                "BadTicket", "BadTicket"]
            # leg 2's endpoint: NFC writes straight into the replica
            open_replica = nfc_frame(nfcp.Op.OPEN, {"datastore": p.datastore,
                                                    "path": f"rep01/{vmx.disk}",
                                                    "mode": "write"})
            write = nfcp.encode(nfcp.Op.WRITE_RANGE, 2, nfcp.WRITE.pack(1, 0) + bytes(4096))
            before = len(records(env.lab))
            expect_refused(env.lab, before, [
                lambda: no_ticket(env.other_host, esx03, nfcp.PORT, open_replica + write),
                lambda: with_ticket(env.controller, esx03, nfcp.PORT,
                                    issuer.issue("nfc", "esx04", "esx02"), open_replica + write),
            ], "nfc (vSphereReplicationNFC)", "esx03")
            assert replica.read_bytes() == image, "a refused stranger changed the replica"
            assert server_state.read_bytes() == state, "a refused stranger moved the generation"
            with open(disk, "r+b") as f:  # the guest writes; the next sync carries it
                f.write(os.urandom(4096))
            agent.tracker.dirty.add(0)
            record = agent.sync_now()
            assert record is not None and record.gen == 2, agent.state.error
            assert disk_digest(replica) == disk_digest(disk)
            assert len(records(env.lab)) == before + 2, "a legitimate leg was refused"
        finally:
            agent.stop()


# ------------------------------------------------------------------ vMotion (8001, 8000)


@pytest.fixture(params=["web01"])
def vm(env: Env, request: pytest.FixtureRequest) -> Iterator[str]:
    manage.create(env.dc, env.lab, request.param, "esx01", MEMORY, RATE)
    yield request.param
    kill_lab_vms(env.lab)


def test_vmotion_refuses_strangers_and_completes(env: Env, vm: str,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    # 1. A legitimate migration esx01 -> esx02; its management exchange is captured.
    captures: list[bytes] = []

    def recording_present(sock: socket.socket, ticket: Ticket) -> Any:
        rec = Recorder(sock)
        got = present(cast(socket.socket, rec), ticket)
        captures.append(bytes(rec.sent))
        return got

    monkeypatch.setattr(vmotion_orchestrate, "present", recording_present)
    first = migrate(env.dc, env.lab, vm, "esx02")
    assert first.completed, first.reason
    monkeypatch.setattr(vmotion_orchestrate, "present", present)
    assert len(captures) == 1 + len(first.pairs)

    # 2. Back to esx01: strangers reach its incoming VM before the orchestrator connects.
    esx01_mgmt, esx01_vmk1 = "198.18.0.11", "198.18.4.11"
    same_vlan = (env.ns("esx02", "vmotion"), "198.18.4.12")
    hello = (json.dumps({"type": "hello", "vm": vm, "memory": MEMORY, "dirty_rate": 0,
                         "seed": 7, "streams": 1, "mode": "disabled"}) + "\n").encode()
    pages = vmotion_protocol_pages()
    issuer = issuer_for(env.lab)
    answers: list[bytes] = []
    real_spawn = vmotion_orchestrate.spawn
    before = len(records(env.lab))

    def spawn_then_strangers(*args: Any, **kw: Any) -> int:
        pid = real_spawn(*args, **kw)
        attempts = [
            lambda: no_ticket(env.other_host, esx01_mgmt, vmotion_orchestrate.CONTROL_PORT,
                              hello),
            lambda: no_ticket(same_vlan, esx01_vmk1, 8000, pages),
            lambda: replay(env.other_host, esx01_mgmt, vmotion_orchestrate.CONTROL_PORT,
                           captures[0], hello),
            lambda: replay(same_vlan, esx01_vmk1, 8000, captures[1], pages),
            # a live vmotion ticket for this host, but of another migration
            lambda: with_ticket(env.other_host, esx01_mgmt, vmotion_orchestrate.CONTROL_PORT,
                                issuer.issue("vmotion", "esx02", "esx01"), hello),
            # tickets for another host, another kind
            lambda: with_ticket(same_vlan, esx01_vmk1, 8000,
                                issuer.issue("vmotion", "esx02", "esx03"), pages),
            lambda: with_ticket(env.controller, esx01_mgmt, vmotion_orchestrate.CONTROL_PORT,
                                issuer.issue("nfc", "esx02", "esx01"), hello),
        ]
        answers.extend(a() for a in attempts)
        return pid

    monkeypatch.setattr(vmotion_orchestrate, "spawn", spawn_then_strangers)
    vms_before = [(r.name, r.host) for r in manage.records(env.lab)]
    back = migrate(env.dc, env.lab, vm, "esx01", encryption="disabled")
    assert answers == [b""] * 7, "a stranger got an answer from the incoming VM"
    assert back.completed, back.reason
    new = wait_records(env.lab, before + 7)[before:]
    assert [(r["service"], r["code"]) for r in new] == [
        ("vmotion management", "NoTicket"), ("vmotion", "NoTicket"),
        ("vmotion management", "BadTicket"), ("vmotion", "BadTicket"),
        ("vmotion management", "ForeignTicket"), ("vmotion", "BadTicket"),
        ("vmotion management", "BadTicket")]
    assert {r["host"] for r in new} == {"esx01"}
    assert vms_before == [(vm, "esx02")]
    moved = manage.get(env.lab, vm)
    assert (moved.host, moved.pid) == ("esx01", back.target_pid)
    assert [(r.name, r.host) for r in manage.records(env.lab)] == [(vm, "esx01")]
    assert len(vm_processes(env.lab)) == 1, "exactly one VM process runs the VM"


def vmotion_protocol_pages() -> bytes:
    from vmknet.vmotion import protocol

    return protocol.pack(protocol.PAGES, 1, 0, 1, 4096) + bytes(4096)


@pytest.mark.parametrize("vm", ["web02"], indirect=True)
def test_vmotion_key_never_on_the_management_adapter(env: Env, vm: str,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    tcpdump = shutil.which("tcpdump")
    assert tcpdump, "tcpdump is needed (scripts/setup.sh installs it)"
    keys: list[bytes] = []
    real_new_key = crypto.new_key

    def remembered() -> bytes:
        keys.append(real_new_key())
        return keys[-1]

    monkeypatch.setattr(crypto, "new_key", remembered)
    pcap = env.folder / "mgmt.pcap"
    capture = subprocess.Popen(
        ["ip", "netns", "exec", env.ns("esx02"), tcpdump, "-i", "any", "-U", "-s", "0", "-n",
         "-w", str(pcap)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        assert capture.stderr is not None
        started = [capture.stderr.readline() for _ in range(2)]  # link type, then listening
        assert any(b"listening" in line for line in started), started
        report = migrate(env.dc, env.lab, vm, "esx02", encryption="required")
        deadline = time.monotonic() + 10.0
        while time.monotonic() < deadline and not all(  # until the capture file has them
                m in pcap.read_bytes() for m in (b'"type": "hello"', b'"type": "verdict"')):
            time.sleep(0.1)
    finally:
        capture.send_signal(signal.SIGINT)
        capture.wait(10)
    assert report.completed and report.encrypted, report.reason
    assert len(keys) == 1
    data = pcap.read_bytes()
    assert b'"type": "hello"' in data and b'"type": "verdict"' in data, \
        f"the capture ({len(data)} bytes) does not hold the management connection"
    key = keys[0]
    for form in (key, key.hex().encode(), key.hex().upper().encode()):
        assert form not in data, "the migration key crossed the management adapter"
