"""The replication server (a lab appliance such as vr01): receives deltas, writes the target.

Leg 1 arrives on TCP 44046 of the server's management adapters (listen with
Service.REPLICATION: sockets.receiving_role maps it to management, PATH-4).
Leg 2 goes out with connect(dc, lab, REPLICATION_NFC, server, target): the
server's management adapter -> the target's vSphereReplicationNFC adapters
(else management), as NFC writes (WRITE_RANGE, then a sync barrier).

Crash consistency: a delta is first spooled whole on the server (state_dir,
atomic rename), then applied, then the generation is recorded in state.json
and the spool removed; only then is the source acked. A server that restarts
re-applies a leftover spool (block writes are absolute, so twice is harmless)
and answers the source's hello with its generation: the source then sends only
the blocks changed since, never a full resync.

SEC-4: a leg-1 connection is served only after it proved a "replication" ticket
whose target is this server (nfc/gate.py); leg 2 presents an "nfc" ticket, issued
per delta for the connections it opens, to the target's replica NFC endpoint.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import socket
import threading
import time
from pathlib import Path
from typing import Any

from ..errors import VmknetError
from ..model import Datacenter, Service
from ..nfc.client import NfcClient
from ..nfc.gate import admitted, ticketed
from ..nfc.protocol import PORT as NFC_PORT
from ..nfc.protocol import WRITE, NfcError, Op
from ..supervise.records import read_json
from ..traffic.place import LabRef, lab_name
from ..traffic.sockets import Listener, close_all, connect, listen
from . import wire
from .cbt import BLOCK
from .state import flow_info, save_json

POLL = 0.25
CHUNK = 256 << 10  # one WRITE_RANGE frame at most


class ReplicationServer:
    def __init__(self, dc: Datacenter, lab: LabRef, host: str, state_dir: Path,
                 port: int = wire.PORT, nfc_port: int = NFC_PORT) -> None:
        self.dc, self.lab, self.host = dc, lab_name(lab), host
        self.state_dir, self.port, self.nfc_port = state_dir, port, nfc_port
        self.listeners: list[Listener] = []
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._socks: list[socket.socket] = []

    @property
    def state_path(self) -> Path:
        return self.state_dir / f"server-{self.host}.json"

    def replicas(self) -> dict[str, Any]:
        return read_json(self.state_path)

    def start(self) -> ReplicationServer:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        for spool in sorted(self.state_dir.glob(f"{self.host}.*.spool")):
            head, data = _read_spool(spool)  # a crash between spool and commit
            self._apply(head, data)
            spool.unlink()
        self.listeners = listen(self.dc, self.lab, self.host, Service.REPLICATION, self.port)
        for lst in self.listeners:
            self._spawn(self._accept, lst)
        return self

    def _spawn(self, target: Any, *args: object) -> None:
        t = threading.Thread(target=target, args=args, daemon=True, name=f"vr-{self.host}")
        self._threads.append(t)
        t.start()

    def _accept(self, lst: Listener) -> None:
        while not self._stop.is_set():
            try:
                if not select.select([lst.sock], [], [], POLL)[0]:
                    continue
                sock, _ = lst.accept(timeout=POLL)
            except (OSError, ValueError):
                return
            self._socks.append(sock)
            self._spawn(self._serve, sock, lst)

    def _serve(self, sock: socket.socket, lst: Listener) -> None:
        # SEC-4: a "replication" ticket for this server before the first message; a
        # refused peer is recorded and closed, nothing is spooled or applied for it.
        if admitted(sock, self.lab, self.host, "replication") is None:
            return
        sock.settimeout(60.0)
        leg1 = {"server_vmk": lst.endpoint.vmknic, "reason": lst.reason}
        with contextlib.suppress(OSError, ValueError), sock:
            while not self._stop.is_set():
                head, data = wire.recv(sock)
                if head["op"] == "hello":
                    got = self.replicas().get(head["vm"], {})
                    wire.send(sock, {"op": "hello", "gen": int(got.get("gen", 0)), **leg1})
                elif head["op"] == "delta":
                    spool = self.state_dir / f"{self.host}.{head['vm']}.spool"
                    _write_spool(spool, head, data)
                    try:
                        ack = {"op": "ack", **self._apply(head, data)}
                    except (NfcError, VmknetError) as err:  # the source keeps its blocks
                        ack = {"op": "error", "message": str(err)}
                    spool.unlink()
                    wire.send(sock, ack)

    def _apply(self, head: dict[str, Any], data: bytes) -> dict[str, Any]:
        """Write the delta's blocks to the target replica over leg 2; record the generation."""
        t0 = time.monotonic()
        conns = connect(self.dc, self.lab, Service.REPLICATION_NFC, self.host, head["target"],
                        port=self.nfc_port)
        ticketed(conns, self.lab, "nfc", self.host, str(head["target"]))  # leg 2: NFC's own
        try:
            client = NfcClient(conns[0].sock)
            client.hello(self.host)
            handle, _ = client.open(head["datastore"], head["path"], "create", int(head["size"]))
            for i, block in enumerate(head["blocks"]):
                piece = data[i * BLOCK:(i + 1) * BLOCK]
                for at in range(0, len(piece), CHUNK):
                    # WRITE_RANGE is pipelined (unanswered); sync() below is the barrier.
                    client._send(Op.WRITE_RANGE, WRITE.pack(handle, block * BLOCK + at)
                                 + piece[at:at + CHUNK])
            client.sync(handle)
            client.close_handle(handle)
            wire_bytes = client.wire
        finally:
            close_all(conns)
        record = {"gen": int(head["gen"]), "taken": head["taken"], "digest": head.get("digest"),
                  "target": head["target"], "datastore": head["datastore"],
                  "path": head["path"], "size": head["size"], "applied": time.time(),
                  "blocks": len(head["blocks"]), "nfc_bytes": wire_bytes,
                  "apply_seconds": round(time.monotonic() - t0, 3),
                  "leg2": [flow_info(c.flow) for c in conns]}
        with self._lock:
            replicas = self.replicas()
            replicas[head["vm"]] = record
            save_json(self.state_path, replicas)
        return record

    def stop(self) -> None:
        self._stop.set()
        for s in self._socks:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
        close_all(self.listeners)
        for t in self._threads:
            t.join(5.0)
        self.listeners, self._threads, self._socks = [], [], []

    def __enter__(self) -> ReplicationServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _write_spool(path: Path, head: dict[str, Any], data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    raw = json.dumps(head).encode()
    with open(tmp, "wb") as f:
        f.write(wire.LEN.pack(len(raw)) + raw + data)
        f.flush()
        os.fsync(f.fileno())
    tmp.replace(path)


def _read_spool(path: Path) -> tuple[dict[str, Any], bytes]:
    raw = path.read_bytes()
    (n,) = wire.LEN.unpack_from(raw)
    return json.loads(raw[4:4 + n]), raw[4 + n:]
