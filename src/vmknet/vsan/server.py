"""A node's object I/O service: TCP 2233 on its vSAN adapters, served after the key is proved.

    create {uuid, comp, size, kind}      a replica (sparse file) or a witness component
    delete {uuid, comp}
    write  {uuid, comp, gen, off, track} data: durable (fdatasync) before the ack; blocks
           also marked for each absent replica named in `track`
    write  {..., resync: true}           a resync copy from the surviving replica
    read   {uuid, comp, off, len}        -> data
    vote   {uuid, comp}                  the witness's vote (quorum, VSAN-2)
    ping

A client write from an older generation of the object than the directory's is
refused with `stale` (directory.py), under the object's lock that the resync
takes to turn a replica active again: no write can land between the last copied
block and the flip without being tracked or refused.
"""

from __future__ import annotations

import contextlib
import select
import socket
import threading
from collections import defaultdict
from collections.abc import Callable
from typing import Any

from ..errors import InvalidArgument, NotFound, VmknetError
from ..lab.registry import security_log
from ..traffic.place import stack_ns
from ..traffic.sockets import BACKLOG, tcp_socket
from ..trust import audit
from . import directory, paths, wire
from .disk import LocalDisk

POLL = 0.25
IDLE = 600.0  # s: a client connection may sit idle this long


class IoServer:
    def __init__(self, lab: str, host: str, cluster: str, key: bytes, disk: LocalDisk,
                 listen: list[tuple[str, str]], port: int = wire.IO_PORT) -> None:
        self.lab, self.host, self.cluster, self.key = lab, host, cluster, key
        self.disk, self.listen, self.port = disk, listen, port
        self.cache = directory.Cache(lab)
        self.locks: defaultdict[str, threading.Lock] = defaultdict(threading.Lock)
        self._stop = threading.Event()
        self._socks: list[socket.socket] = []
        self._threads: list[threading.Thread] = []
        self.refused = 0

    def start(self, opened: list[socket.socket] | None = None) -> IoServer:
        """Listen on `self.listen`, or serve `opened`: listeners the host's agent opened in
        its own namespaces on the addresses the controller checked (SEC-2)."""
        if opened is None:
            opened = []
            for stack, address in self.listen:
                sock = tcp_socket(stack_ns(self.lab, self.host, stack), socket.AF_INET)
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                opened.append(sock)
                sock.bind((address, self.port))
                sock.listen(BACKLOG)
        for sock in opened:
            self._socks.append(sock)
            self._spawn(self._accept, sock)
        return self

    def _spawn(self, target: Callable[..., None], *args: object) -> None:
        t = threading.Thread(target=target, args=args, daemon=True, name=f"vsan-io-{self.host}")
        self._threads.append(t)
        t.start()

    def _accept(self, lst: socket.socket) -> None:
        while not self._stop.is_set():
            try:
                if not select.select([lst], [], [], POLL)[0]:
                    continue
                sock, _ = lst.accept()
            except (OSError, ValueError):
                return
            self._spawn(self._serve, sock)

    def _serve(self, sock: socket.socket) -> None:
        with contextlib.suppress(OSError, ValueError, ConnectionError), sock:
            sock.settimeout(5.0)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            try:
                peer = wire.server_handshake(sock, self.key, self.cluster)
            except wire.AuthError as err:
                self.refused += 1
                audit.record(security_log(self.lab), "vsan", self.host, _peer(sock),
                             err.code, err.message)
                return
            sock.settimeout(IDLE)
            while not self._stop.is_set():
                head, data = wire.recv(sock)
                try:
                    reply, out = self._op(peer, head, data)
                except (VmknetError, OSError, KeyError, TypeError, ValueError) as err:
                    reply, out = {"op": "error", "message": str(err)[:300]}, b""
                wire.send(sock, reply, out)

    def _op(self, peer: str, head: dict[str, Any],
            data: bytearray) -> tuple[dict[str, Any], bytes]:
        op = head.get("op")
        if op == "ping":
            return {"op": "ok", "host": self.host}, b""
        uuid, comp = paths.check_uuid(head["uuid"]), paths.check_comp(head["comp"])
        if op == "write":
            return self._write(uuid, comp, head, data), b""
        if op == "read":
            return {"op": "ok"}, self.disk.read(uuid, comp, int(head["off"]), int(head["len"]))
        if op == "vote":
            return {"op": "ok" if self.disk.has_witness(uuid, comp) else "no"}, b""
        if op == "create":
            self.disk.create(uuid, comp, int(head["size"]), str(head["kind"]))
            return {"op": "ok"}, b""
        if op == "delete":
            self.disk.delete(uuid, comp)
            return {"op": "ok"}, b""
        raise InvalidArgument(f"unknown vSAN operation {str(op)[:20]!r} from {peer}")

    def _write(self, uuid: str, comp: str, head: dict[str, Any],
               data: bytearray) -> dict[str, Any]:
        off = int(head["off"])
        if head.get("resync"):
            self.disk.write(uuid, comp, off, data)
            return {"op": "ok"}
        track = [paths.check_comp(t) for t in head.get("track", [])]
        with self.locks[uuid]:
            try:
                meta = self.cache.get(uuid)
            except (FileNotFoundError, NotFound):
                raise NotFound(f"No vSAN object {uuid}") from None
            if int(head["gen"]) != meta.gen:
                return {"op": "stale", "gen": meta.gen}
            self.disk.write(uuid, comp, off, data, track)
        return {"op": "ok"}

    def stop(self) -> None:
        self._stop.set()
        for s in self._socks:
            with contextlib.suppress(OSError):
                s.close()
        for t in self._threads:
            t.join(1.0)


def _peer(sock: socket.socket) -> str:
    try:
        a = sock.getpeername()
    except OSError:
        return "unknown"
    return f"{a[0]} port {a[1]}"
