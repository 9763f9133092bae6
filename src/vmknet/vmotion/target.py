"""The target side: an incoming VM process receiving memory on the target's vMotion adapters.

Its listeners come from `traffic.sockets.listen` (made by `migrate()` and
inherited), so it receives on exactly the adapters that may carry vMotion on
this host. One receiver thread per stream writes pages into guest memory; each
page remembers the round of its last write, and older data is dropped: a stream
that died with data in flight may still deliver it after another stream redid
that work (streams.py). Each write also rehashes the digest blocks it touched
(verify.py), so at switchover the target knows the digest of its memory at once:
it resumes the guest as soon as the last pages and the device state are in,
answers with its resume time and digest, and commits (writes the VM's registry
record) only when the source's digest of its frozen memory is the same. On any
other answer it stops the guest again and exits: the source resumes.
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
from .verify import BlockDigests

ACCEPT_TIMEOUT = 30.0


class Incoming:
    def __init__(self, memory: GuestMemory, key: bytes | None) -> None:
        self.memory = memory
        self.page_round: npt.NDArray[np.uint32] = np.zeros(memory.n_pages, dtype=np.uint32)
        self.opener = crypto.Opener(key) if key else None
        self.lock = threading.Lock()
        self.digests = BlockDigests(memory, self.lock)
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
                self.digests.update(a, frame.pages, src is None)
            elif fresh.any():
                dst[fresh] = 0 if src is None else src[fresh]
                self.page_round[a:b][fresh] = frame.round
                self.digests.update(a, frame.pages, src is None, fresh)

    def digest(self) -> str:
        return self.digests.digest()


def accept_one(listeners: list[socket.socket], timeout: float) -> socket.socket:
    ready, _, _ = select.select(listeners, [], [], timeout)
    if not ready:
        raise TimeoutError("no connection from the source")
    conn, _ = ready[0].accept()
    conn.setblocking(True)
    return conn


def migrate_in(name: str, lab: str, host: str, mgmt_listeners: list[socket.socket],
               vm_listeners: list[socket.socket],
               on_commit: Callable[[Guest], None]) -> Guest | None:
    """Receive a VM; the running Guest once verified and committed, None when aborted."""
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
    seed = int(hello["seed"])  # the guest is built now: only its start is left for the stun
    guest = Guest(str(hello["vm"]), lab, host, seed, memory,
                  Workload(memory, int(hello["dirty_rate"]), seed))
    send_line(mgmt, {"ok": True, "encryption": can})
    for _ in range(int(hello["streams"])):
        incoming.serve(accept_one(vm_listeners, ACCEPT_TIMEOUT))
    for listener in (*mgmt_listeners, *vm_listeners):
        listener.close()
    mgmt.settimeout(None)  # the source's own timeouts decide how long pre-copy may take
    with mgmt:
        while (message := reader.read()) is not None:
            kind = message.get("type")
            if kind == "probe":  # the source measures the switchover's costs
                t = time.perf_counter()  # first, the digest backlog: it is not a fixed cost
                blocks = incoming.digests.settle()
                send_line(mgmt, {"type": "probe", "settle_s": time.perf_counter() - t,
                                 "blocks": blocks})
            elif kind == "switchover":
                return _switchover(guest, incoming, mgmt, reader, message, on_commit)
            else:
                return None  # abort
    return None


def _switchover(guest: Guest, incoming: Incoming, mgmt: socket.socket, reader: LineReader,
                message: Message, on_commit: Callable[[Guest], None]) -> Guest | None:
    """Resume at once, then commit only when the source's digest equals ours."""
    digest = incoming.digest()  # the receive path is done: every stream passed the barrier
    guest.restore_device(base64.b64decode(message["device"]))
    guest.workload.start()
    t_resume = time.monotonic()
    send_line(mgmt, {"ok": True, "t_resume": t_resume, "digest": digest})
    verdict = reader.read()
    source = verdict.get("digest") if verdict and verdict.get("type") == "verdict" else None
    if source != digest:
        guest.workload.stop()  # not verified: the source resumes, this copy goes
        with contextlib.suppress(OSError):
            send_line(mgmt, {"ok": False, "reason": f"memory digest mismatch: source "
                                                    f"{str(source)[:16]}, target {digest[:16]}"})
        return None
    on_commit(guest)
    send_line(mgmt, {"ok": True, "committed": True})
    return guest
