"""Cluster membership over UDP 12321 between vSAN adapters (CMMDS, unicast, VSAN-1).

Every INTERVAL each node sends each peer on its list one heartbeat (sealed with
the cluster key: a datagram without the right HMAC, from a host not on the list,
or replayed, is dropped). A peer not heard for DEAD_AFTER is gone from this node's
view. The node's partition is itself and the peers it hears; in it the node with
the lowest name is the master, the next the backup, the others agents, as CMMDS
elects one master and one backup per partition. Two nodes that see different
partitions (a host whose vSAN uplink is down sees only itself) are what the
health check "vSAN cluster partition" reports.
"""

from __future__ import annotations

import contextlib
import os
import select
import socket
import threading
import time
from typing import Any

from ..dataplane.linux import netns
from ..traffic.place import stack_ns
from . import wire
from .config import Peer

INTERVAL = 0.1  # s
DEAD_AFTER = 0.6  # s: six heartbeats missed


class Membership:
    def __init__(self, lab: str, cluster: str, host: str, key: bytes, peers: list[Peer],
                 listen: list[tuple[str, str]], port: int = wire.HB_PORT) -> None:
        self.lab, self.cluster, self.host, self.key = lab, cluster, host, key
        self.peers = {p.host: p for p in peers}
        self.listen, self.port = listen, port
        self.boot = os.urandom(8).hex()  # a restarted peer's sequence starts again
        self.heard: dict[str, float] = {}  # host -> monotonic time of its last heartbeat
        self.views: dict[str, list[str]] = {}  # host -> whom it hears
        self._seq: dict[str, tuple[str, int]] = {}
        self._socks: dict[str, socket.socket] = {}  # our address -> its socket
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self.dropped = 0
        self.on_change: list[Any] = []

    def start(self) -> Membership:
        for stack, address in self.listen:
            sock = netns.in_netns(stack_ns(self.lab, self.host, stack),
                                  lambda: socket.socket(socket.AF_INET, socket.SOCK_DGRAM))
            self._socks[address] = sock
            sock.bind((address, self.port))
        for fn in (self._send_loop, self._recv_loop):
            t = threading.Thread(target=fn, daemon=True, name=f"vsan-hb-{self.host}")
            self._threads.append(t)
            t.start()
        return self

    def alive(self) -> set[str]:
        now = time.monotonic()
        return {h for h, t in self.heard.items() if now - t <= DEAD_AFTER}

    def heard_at(self, host: str) -> float:
        """time.time() of `host`'s last heartbeat (0: never heard)."""
        t = self.heard.get(host)
        return 0.0 if t is None else time.time() - (time.monotonic() - t)

    def partition(self) -> list[str]:
        return sorted(self.alive() | {self.host})

    def roles(self) -> dict[str, str]:
        part = self.partition()
        return {h: "master" if i == 0 else "backup" if i == 1 else "agent"
                for i, h in enumerate(part)}

    def _send_loop(self) -> None:
        seq = 0
        while not self._stop.wait(INTERVAL):
            seq += 1
            body = wire.seal(self.key, {"c": self.cluster, "h": self.host, "b": self.boot,
                                        "s": seq, "v": sorted(self.alive())})
            for p in self.peers.values():
                sock = self._socks.get(p.source)
                if sock is None:
                    continue
                with contextlib.suppress(OSError):  # a link that is down: the peer goes silent
                    sock.sendto(body, (p.address, self.port))

    def _recv_loop(self) -> None:
        socks = list(self._socks.values())
        while not self._stop.is_set():
            try:
                ready = select.select(socks, [], [], 0.2)[0]
            except (OSError, ValueError):
                return
            for sock in ready:
                with contextlib.suppress(OSError):
                    # One byte more than allowed: a longer datagram is seen as too long.
                    data, src = sock.recvfrom(wire.MAX_DATAGRAM + 1)
                    self._take(data, str(src[0]))

    def _take(self, data: bytes, src: str) -> None:
        body = wire.unseal(self.key, data)
        peer = self.peers.get(str(body.get("h"))) if body else None
        if body is None or peer is None or body.get("c") != self.cluster or src != peer.address:
            self.dropped += 1
            return
        boot, seq = str(body.get("b")), body.get("s")
        last = self._seq.get(peer.host)
        if not isinstance(seq, int) or (last is not None and last[0] == boot and seq <= last[1]):
            self.dropped += 1  # a replay
            return
        self._seq[peer.host] = (boot, seq)
        self.heard[peer.host] = time.monotonic()
        view = body.get("v")
        if isinstance(view, list):
            self.views[peer.host] = [str(h)[:64] for h in view[:256]]

    def stop(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(1.0)
        for s in self._socks.values():
            with contextlib.suppress(OSError):
                s.close()
