"""The target side: an incoming VM process receiving memory on the target's vMotion adapters.

Its listeners come from `traffic.sockets.listen` (made by `migrate()` and
inherited), so it receives on exactly the adapters that may carry vMotion on
this host. One receiver thread per stream writes pages into guest memory; each
page remembers the round of its last write, and older data is dropped: a stream
that died with data in flight may still deliver it after another stream redid
that work (streams.py). At switchover both ends hash memory; only an equal
digest resumes the guest here.
"""

from __future__ import annotations

import base64
import contextlib
import select
import socket
import threading
import time
from collections.abc import Callable

import numpy as np
import numpy.typing as npt

from ..vm import registry
from ..vm.control import LineReader, Message, send_line
from ..vm.guest import Guest
from ..vm.memory import GuestMemory, Workload
from ..vm.units import PAGE_SIZE
from . import crypto, protocol

ACCEPT_TIMEOUT = 30.0


class Incoming:
    def __init__(self, memory: GuestMemory, key: bytes | None) -> None:
        self.memory = memory
        self.page_round: npt.NDArray[np.uint32] = np.zeros(memory.n_pages, dtype=np.uint32)
        self.opener = crypto.Opener(key) if key else None
        self.lock = threading.Lock()
        self.threads: list[threading.Thread] = []

    def serve(self, conn: socket.socket) -> None:
        thread = threading.Thread(target=self._receive, args=(conn,), daemon=True)
        thread.start()
        self.threads.append(thread)

    def _receive(self, conn: socket.socket) -> None:
        buf = bytearray(1 << 20)
        with conn, contextlib.suppress(OSError, protocol.ProtocolError, ValueError):
            while True:
                frame = protocol.read_frame(conn)
                if frame.kind == protocol.BYE:
                    return
                if frame.kind == protocol.ROUND_END:
                    conn.sendall(protocol.pack(protocol.ACK, frame.round))
                elif frame.kind == protocol.ZERO:
                    self._apply(frame, None)
                elif frame.kind == protocol.PAGES:
                    if frame.length > len(buf):
                        buf = bytearray(frame.length)
                    view = memoryview(buf)[:frame.length]
                    protocol.recv_exact(conn, view)
                    if self.opener is not None:
                        header = protocol.pack(*frame)
                        self._apply(frame, self.opener.open(header, view))
                    else:
                        self._apply(frame, view)

    def _apply(self, frame: protocol.Frame, data: bytes | memoryview | None) -> None:
        a, b = frame.start, frame.start + frame.pages
        if b > self.memory.n_pages or (data is not None and len(data) != frame.pages * PAGE_SIZE):
            raise protocol.ProtocolError(f"pages {a}..{b} do not fit")
        src = None if data is None else np.frombuffer(data, np.uint8).reshape(-1, PAGE_SIZE)
        with self.lock:
            fresh = self.page_round[a:b] <= frame.round
            dst = self.memory.pages[a:b]
            if fresh.all():
                dst[:] = 0 if src is None else src
                self.page_round[a:b] = frame.round
                return
            dst[fresh] = 0 if src is None else src[fresh]
            self.page_round[a:b][fresh] = frame.round


def accept_one(listeners: list[socket.socket], timeout: float) -> socket.socket:
    ready, _, _ = select.select(listeners, [], [], timeout)
    if not ready:
        raise TimeoutError("no connection from the source")
    conn, _ = ready[0].accept()
    conn.setblocking(True)
    return conn


def migrate_in(name: str, lab: str, host: str, mgmt_listeners: list[socket.socket],
               vm_listeners: list[socket.socket],
               on_resume: Callable[[Guest], None]) -> Guest | None:
    """Receive a VM; the resumed Guest, or None when the migration was aborted."""
    mgmt = accept_one(mgmt_listeners, ACCEPT_TIMEOUT)
    mgmt.settimeout(ACCEPT_TIMEOUT)
    reader = LineReader(mgmt)
    hello = reader.read()
    if hello is None or hello.get("type") != "hello":
        return None
    can = registry.host_encryption(lab, host)
    use = can and hello.get("mode") != crypto.DISABLED and hello.get("key") is not None
    if hello.get("mode") == crypto.REQUIRED and not can:
        send_line(mgmt, {"ok": False, "encryption": False, "code": "SEC-1",
                         "reason": f"host {host} does not support encrypted vMotion"})
        return None
    memory = GuestMemory(int(hello["memory"]))
    incoming = Incoming(memory, bytes.fromhex(hello["key"]) if use else None)
    send_line(mgmt, {"ok": True, "encryption": can})
    for _ in range(int(hello["streams"])):
        incoming.serve(accept_one(vm_listeners, ACCEPT_TIMEOUT))
    for listener in (*mgmt_listeners, *vm_listeners):
        listener.close()
    mgmt.settimeout(None)  # the source's own timeouts decide how long pre-copy may take
    message: Message | None = reader.read()
    if message is None or message.get("type") != "switchover":
        return None
    with incoming.lock:
        digest = memory.digest()
    if digest != message["digest"]:
        send_line(mgmt, {"ok": False, "reason": f"memory digest mismatch: source "
                                                f"{message['digest'][:16]}, target {digest[:16]}"})
        return None
    seed = int(hello["seed"])
    guest = Guest(str(hello["vm"]), lab, host, seed, memory,
                  Workload(memory, int(hello["dirty_rate"]), seed))
    guest.restore_device(base64.b64decode(message["device"]))
    guest.workload.start()
    t_resume = time.monotonic()
    on_resume(guest)
    send_line(mgmt, {"ok": True, "t_resume": t_resume, "digest": digest})
    with contextlib.suppress(OSError):
        mgmt.close()
    return guest
