"""The source host's replication agent: CBT, a consistent point per sync, RPO scheduling, leg 1.

    agent = SourceAgent(cfg, dc).start()   # a sync at once, then every RPO/2
    agent.sync_now(); agent.syncs; agent.stop()

Leg 1 comes only from connect(dc, lab, REPLICATION, source, server, 44046):
the source's vSphereReplication adapters, else management (PATH-4). Each
connection (the first, and a reconnect after a failed sync) presents its own
"replication" ticket before the hello (SEC-4).
"""

from __future__ import annotations

import contextlib
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..errors import VmknetError
from ..model import Datacenter, Service
from ..nfc.gate import ticketed
from ..supervise.records import read_json
from ..traffic.sockets import Connection, close_all, connect
from . import wire
from .cbt import BLOCK, PointInTime, Tracker
from .config import ReplicationConfig, check
from .state import flow_info, save_json


@dataclass(frozen=True)
class SyncRecord:
    gen: int
    taken: float  # the consistent point in time
    acked: float  # when the replica held it
    blocks: int
    bytes: int  # leg-1 bytes on the wire
    lag: float  # acked - previous point: the worst replica age during this sync (RPO)
    met: bool


@dataclass
class _State:
    gen: int = 0
    taken: float = 0.0
    syncs: list[SyncRecord] = field(default_factory=list)
    error: str | None = None


class SourceAgent:
    def __init__(self, cfg: ReplicationConfig, dc: Datacenter, state_dir: Path,
                 verify: bool = False) -> None:
        self.cfg, self.dc, self.state_dir, self.verify = cfg, dc, state_dir, verify
        self.legs = check(dc, cfg)  # SVC-4, NoPath before anything moves
        self.tracker = Tracker(Path(cfg.disk), state_dir / f"pending-{cfg.vm}.json",
                               cfg.write_rate, seed=cfg.seed)
        saved = read_json(self.status_path)
        self.state = _State(gen=int(saved.get("gen", 0)), taken=float(saved.get("last_sync", 0)))
        self.leg2: list[dict[str, Any]] = []
        self._conn: list[Connection] = []
        self._stop = threading.Event()
        self._sync_lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self.started = time.time()

    @property
    def status_path(self) -> Path:
        return self.state_dir / f"source-{self.cfg.vm}.json"

    @property
    def syncs(self) -> list[SyncRecord]:
        return list(self.state.syncs)

    def start(self, schedule: bool = True) -> SourceAgent:
        server_gen = self._hello()
        # The server holds our last acked generation (or the one after, if it applied a
        # sync whose ack was lost): only pending blocks go. Anything else: full resync.
        have = server_gen > 0 and server_gen in (self.state.gen, self.state.gen + 1)
        self.state.gen = server_gen if have else 0
        self.tracker.load_or_full(have)
        self.tracker.start()
        if self.state.taken == 0:
            self.state.taken = self.started  # the RPO clock starts with the replication
        if schedule:
            self._thread = threading.Thread(target=self._loop, daemon=True,
                                            name=f"vr-source-{self.cfg.vm}")
            self._thread.start()
        return self

    def _hello(self) -> int:
        self._conn = connect(self.dc, self.cfg.lab, Service.REPLICATION, self.cfg.source,
                             self.cfg.server, port=self.cfg.port)
        try:  # SEC-4: every (re)connection with its own ticket
            ticketed(self._conn, self.cfg.lab, "replication", self.cfg.source, self.cfg.server)
        except BaseException:
            self._conn = []
            raise
        sock = self._conn[0].sock
        sock.settimeout(60.0)
        wire.send(sock, {"op": "hello", "vm": self.cfg.vm})
        head, _ = wire.recv(sock)
        return int(head["gen"])

    def _loop(self) -> None:
        interval = self.cfg.rpo / 2  # RPO/2, or at once when a sync ran longer than that
        while not self._stop.is_set():
            t0 = time.monotonic()
            self.sync_now()
            self._stop.wait(max(0.0, interval - (time.monotonic() - t0)))

    def sync_now(self) -> SyncRecord | None:
        with self._sync_lock:
            pit = self.tracker.take(self.state.gen + 1, self.verify)
            try:
                if not self._conn:
                    self._hello()
                record = self._send(pit)
                self.state.error = None
                return record
            except (OSError, ValueError, KeyError, VmknetError) as err:  # a refused ticket too
                self.tracker.give_back(pit)  # nothing is lost: the blocks go next time
                close_all(self._conn)
                self._conn = []
                self.state.error = f"{type(err).__name__}: {err}"
                return None
            finally:
                self.tracker.save()
                self._save_status()

    def _send(self, pit: PointInTime) -> SyncRecord:
        c = self.cfg
        head = {"op": "delta", "vm": c.vm, "gen": pit.generation, "taken": pit.taken,
                "blocks": pit.blocks, "digest": pit.digest, "target": c.target,
                "datastore": c.datastore, "path": c.path, "size": self.tracker.size}
        sock = self._conn[0].sock
        sent = wire.send(sock, head, pit.data)
        ack, _ = wire.recv(sock)
        if ack["op"] != "ack":
            raise ValueError(f"the server refused generation {pit.generation}: {ack['message']}")
        now = time.time()
        lag = now - self.state.taken
        record = SyncRecord(pit.generation, pit.taken, now, len(pit.blocks), sent, lag,
                            lag <= c.rpo)
        self.leg2 = list(ack.get("leg2", []))
        self.state.gen, self.state.taken = pit.generation, pit.taken
        self.state.syncs.append(record)
        return record

    def _save_status(self) -> None:
        last = self.state.syncs[-1] if self.state.syncs else None
        save_json(self.status_path, {
            **asdict(self.cfg), "gen": self.state.gen, "last_sync": self.state.taken,
            "syncs": len(self.state.syncs), "error": self.state.error,
            "bytes_last": last.bytes if last else 0,
            "bytes_total": sum(s.bytes for s in self.state.syncs),
            "blocks_last": last.blocks if last else 0, "block_size": BLOCK,
            "rpo_last": last.lag if last else None,
            "rpo_worst": max((s.lag for s in self.state.syncs), default=None),
            "missed": sum(not s.met for s in self.state.syncs),
            "written": self.tracker.written,
            "leg1": [flow_info(f) for f in self.legs[0]],
            "leg1_used": [flow_info(x.flow) for x in self._conn],
            "leg2": self.leg2 or [flow_info(f) for f in self.legs[1]]})

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(30.0)
        self.tracker.stop()
        self.tracker.save()
        with contextlib.suppress(OSError):
            self._save_status()
        close_all(self._conn)
        self._conn = []
