"""The target side: an incoming VM process receiving memory on the target's vMotion adapters.

Its listeners come from `traffic.sockets.listen` (made by `migrate()` and
inherited), so it receives on exactly the adapters that may carry vMotion on
this host. One receiver thread per stream receives pages straight into guest
memory (`Incoming`); each page remembers the round of its last write, and older
data is dropped: a stream
that died with data in flight may still deliver it after another stream redid
that work (streams.py). Each write also marks the digest blocks it touched for
a hasher thread (verify.py), so at switchover the target knows the digest of its memory at once:
it resumes the guest as soon as the last pages and the device state are in,
answers with its resume time and digest, and commits (writes the VM's registry
record) only when the source's digest of its frozen memory is the same. On any
other answer it stops the guest again and exits: the source resumes.

SEC-4: the incoming VM is started for one ticket (--ticket); its management
connection and every stream must prove that ticket before a byte is read
(admission.Door), anything else is refused and recorded. The AES key of an
encrypted migration is the ticket's key, read from this host's ticket book.
"""

from __future__ import annotations

import base64
import contextlib
import socket
import threading
import time
from collections.abc import Callable

import numpy as np
import numpy.typing as npt
from cryptography.exceptions import InvalidTag

from ..profiling import profiled
from ..vm import registry
from ..vm.control import LineReader, Message, send_line
from ..vm.guest import Guest
from ..vm.memory import GuestMemory, Workload
from ..vm.units import MAX_MEMORY, MAX_RATE, PAGE_SIZE
from . import crypto, protocol
from .admission import Door
from .crypto import OVERHEAD
from .precopy import segments
from .verify import BlockDigests

ACCEPT_TIMEOUT = 30.0


class Incoming:
    """The receive side of one migration: page data lands straight in guest memory.

    Each stream reads a frame header, then `recv_into` the guest memory the frame names
    (plain), or its ciphertext into the stream's own buffer and `decrypt_into` guest
    memory (encrypted): no intermediate copy, no per-page Python work. Only round
    bookkeeping takes the lock, twice per frame (1 MiB): a *claim* of the frame's pages
    for its round before the write, its release after. A frame whose pages hold newer
    data (a dead stream's late data) is read into the stream's buffer and only its
    fresh pages are applied (`_apply`); so is a frame of a newer round that overlaps an
    older claim still in flight, and its data is applied again when that claim ends.
    Fresh guest memory is zero: `touched` tracks the pages ever written with data, so a
    zero run over untouched pages writes (and faults in) nothing.
    """

    def __init__(self, memory: GuestMemory, key: bytes | None) -> None:
        self.memory = memory
        self.page_round: npt.NDArray[np.uint32] = np.zeros(memory.n_pages, dtype=np.uint32)
        self.touched: npt.NDArray[np.bool_] = np.zeros(memory.n_pages, dtype=np.bool_)
        self.opener = crypto.Opener(key) if key else None
        self.lock = threading.Lock()
        self.digests = BlockDigests(memory, self.lock)
        self.claims: dict[int, tuple[int, int, int]] = {}  # stream -> (first, end, round)
        self.deferred: dict[int, list[tuple[protocol.Frame, bytes | None]]] = {}
        self.threads: list[threading.Thread] = []
        self._plain: dict[int, bytearray] = {}  # stream -> buffer its sealed frames open into

    def serve(self, conn: socket.socket) -> None:
        thread = threading.Thread(target=self._receive, args=(conn, len(self.threads)),
                                  daemon=True)
        thread.start()
        self.threads.append(thread)

    def _receive(self, conn: socket.socket, me: int) -> None:
        with profiled(f"vmotion-recv{me}"):
            self._receive_frames(conn, me)

    def _receive_frames(self, conn: socket.socket, me: int) -> None:
        self._plain[me] = bytearray(0)
        with contextlib.suppress(OSError):
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        head = bytearray(protocol.HEADER.size)
        head_view = memoryview(head)
        buf = bytearray(1 << 20)
        guest = memoryview(self.memory.buf)
        with conn, contextlib.suppress(OSError, protocol.ProtocolError, ValueError,
                                       InvalidTag):
            while True:
                protocol.recv_exact(conn, head_view)
                frame = protocol.unpack(head)
                if frame.kind == protocol.BYE:
                    return
                if frame.kind == protocol.ROUND_END:
                    conn.sendall(protocol.pack(protocol.ACK, frame.round))
                elif frame.kind == protocol.ZERO:
                    self._apply(frame, None)
                elif frame.kind == protocol.CHUNK:
                    buf = self._chunk(conn, me, frame, guest, buf)
                elif frame.kind == protocol.PAGES:
                    a, b = frame.start * PAGE_SIZE, (frame.start + frame.pages) * PAGE_SIZE
                    plain = frame.length if self.opener is None else frame.length - OVERHEAD
                    if frame.start + frame.pages > self.memory.n_pages or plain != b - a:
                        raise protocol.ProtocolError(f"{frame} does not fit")
                    if self.opener is None and self._claim(me, frame):
                        try:
                            protocol.recv_exact(conn, guest[a:b])
                        finally:
                            self._release(me, frame)
                        continue
                    if frame.length > len(buf):
                        buf = bytearray(frame.length)
                    payload = memoryview(buf)[:frame.length]
                    protocol.recv_exact(conn, payload)
                    if self.opener is None:
                        self._apply(frame, payload)
                    elif self._claim(me, frame):
                        try:  # decrypted straight into guest memory
                            self.opener.open_into(protocol.pack(*frame), payload, guest[a:b])
                        finally:
                            self._release(me, frame)
                    else:
                        self._apply(frame, self.opener.open(protocol.pack(*frame), payload))

    def _chunk(self, conn: socket.socket, me: int, frame: protocol.Frame, guest: memoryview,
               buf: bytearray) -> bytearray:
        """Receive one CHUNK frame (bitmap, then the pages holding data): plain and claimed,
        each run of data pages lands in guest memory through one scatter recvmsg; sealed,
        it is opened into the stream's buffer and scattered with one numpy copy. Returns
        the stream's buffer (grown when a frame needed more)."""
        count = frame.pages
        nb = protocol.bitmap_bytes(count)
        if count == 0 or frame.start + count > self.memory.n_pages or frame.length < nb:
            raise protocol.ProtocolError(f"{frame} does not fit")
        if frame.length > len(buf):
            buf = bytearray(frame.length)
        if self.opener is None:
            protocol.recv_exact(conn, memoryview(buf)[:nb])
            nonzero = _bits(buf[:nb], count)
            data_len = frame.length - nb
            if data_len != int(np.count_nonzero(nonzero)) * PAGE_SIZE:
                raise protocol.ProtocolError(f"{frame}: bitmap and length disagree")
            if self._claim(me, frame):
                try:
                    protocol.recv_exact_into(conn, [
                        guest[a * PAGE_SIZE:(a + n) * PAGE_SIZE]
                        for a, n, zero in segments(nonzero, frame.start) if not zero])
                finally:
                    self._release(me, frame, nonzero)
                return buf
            payload = memoryview(buf)[:data_len]
            protocol.recv_exact(conn, payload)
        else:
            sealed = memoryview(buf)[:frame.length]
            protocol.recv_exact(conn, sealed)
            n = frame.length - OVERHEAD
            if n < nb:
                raise protocol.ProtocolError(f"{frame} does not fit")
            if len(self._plain[me]) < n:  # the stream's own buffer for the opened frame
                self._plain[me] = bytearray(max(n, 1 << 20))
            plain = memoryview(self._plain[me])[:n]
            self.opener.open_into(protocol.pack(*frame), sealed, plain)
            nonzero = _bits(plain[:nb], count)
            if n - nb != int(np.count_nonzero(nonzero)) * PAGE_SIZE:
                raise protocol.ProtocolError(f"{frame}: bitmap and length disagree")
            payload = plain[nb:]
            if self._claim(me, frame):
                try:
                    self.memory.pages[frame.start:frame.start + count][nonzero] = \
                        np.frombuffer(payload, np.uint8).reshape(-1, PAGE_SIZE)
                finally:
                    self._release(me, frame, nonzero)
                return buf
        # Newer data holds some of these pages (a dead stream's late frame): the frame as
        # whole pages, applied where fresh, like a PAGES frame (the rare path).
        full = np.zeros((count, PAGE_SIZE), np.uint8)
        full[nonzero] = np.frombuffer(payload, np.uint8).reshape(-1, PAGE_SIZE)
        self._apply(frame._replace(kind=protocol.PAGES, length=count * PAGE_SIZE),
                    full.reshape(-1).data)
        return buf

    def _claim(self, me: int, frame: protocol.Frame) -> bool:
        """Claim pages for a direct write: none holds newer data, no older write in flight."""
        a, b, rnd = frame.start, frame.start + frame.pages, frame.round
        with self.lock:
            if self.page_round[a:b].max(initial=0) > rnd or any(
                    r < rnd and x < b and a < y for x, y, r in self.claims.values()):
                return False
            self.page_round[a:b] = rnd
            self.claims[me] = (a, b, rnd)
            return True

    def _release(self, me: int, frame: protocol.Frame,
                 nonzero: npt.NDArray[np.bool_] | None = None) -> None:
        """End a direct write. `nonzero`: a CHUNK's bitmap: its other pages are zero, so
        those ever written with data are zeroed now, and their digests are known."""
        a, b = frame.start, frame.start + frame.pages
        with self.lock:
            del self.claims[me]
            if nonzero is None:
                self.touched[a:b] = True
                self.digests.mark(a, b, zero=False)
            else:
                stale = self.touched[a:b] & ~nonzero
                if stale.any():
                    self.memory.pages[a:b][stale] = 0
                self.touched[a:b] |= nonzero
                self.digests.mark_pages(a, b, nonzero)
            for later, data in self.deferred.pop(me, []):  # newer data this write overlapped
                x, y = later.start, later.start + later.pages
                self._write(later, data, self.page_round[x:y] == later.round)

    def _apply(self, frame: protocol.Frame, data: bytes | memoryview | None) -> None:
        """Apply a frame from a buffer (or a zero run): only its pages holding no newer data."""
        a, b = frame.start, frame.start + frame.pages
        if b > self.memory.n_pages or (data is not None and len(data) != frame.pages * PAGE_SIZE):
            raise protocol.ProtocolError(f"pages {a}..{b} do not fit")
        with self.lock:
            fresh = self.page_round[a:b] <= frame.round
            if not fresh.any():
                return
            self._write(frame, data, fresh)
            for other, (x, y, r) in self.claims.items():
                if r < frame.round and x < b and a < y:  # an older direct write in flight
                    self.deferred.setdefault(other, []).append(
                        (frame, None if data is None else bytes(data)))

    def _write(self, frame: protocol.Frame, data: bytes | memoryview | None,
               fresh: npt.NDArray[np.bool_]) -> None:
        """Write the `fresh` pages of a frame (the lock held)."""
        a, b = frame.start, frame.start + frame.pages
        whole = bool(fresh.all())
        dst = self.memory.pages[a:b]
        if data is None:  # zeros: only where data was ever written (fresh memory is zero)
            dirty = self.touched[a:b] & fresh
            if dirty.all():
                dst[:] = 0
            elif dirty.any():
                dst[dirty] = 0
        else:
            src = np.frombuffer(data, np.uint8).reshape(-1, PAGE_SIZE)
            if whole:
                dst[:] = src
            else:
                dst[fresh] = src[fresh]
            self.touched[a:b] |= fresh
        if whole:
            self.page_round[a:b] = frame.round
        else:
            self.page_round[a:b][fresh] = frame.round
        self.digests.mark(a, b, zero=data is None, whole=whole)

    def digest(self) -> str:
        return self.digests.digest()


def _bits(bitmap: bytes | bytearray | memoryview, count: int) -> npt.NDArray[np.bool_]:
    """A CHUNK's bitmap -> one bool per page (True: the frame carries its data)."""
    return np.unpackbits(np.frombuffer(bitmap, np.uint8), count=count,
                         bitorder="little").astype(np.bool_)


def _bad_hello(hello: Message, uses: int) -> str | None:
    """Why the hello's sizes are refused, or None. `uses`: the ticket's uses when the
    management connection was admitted (it comes first): the streams it may still admit."""
    try:
        memory, rate, streams = int(hello["memory"]), int(hello["dirty_rate"]), \
            int(hello["streams"])
        int(hello["seed"])
    except (KeyError, TypeError, ValueError):
        return "malformed hello"
    if not 0 < memory <= MAX_MEMORY:
        return f"memory {memory} outside 1..{MAX_MEMORY}"
    if not 0 <= rate <= MAX_RATE:
        return f"dirty rate {rate} outside 0..{MAX_RATE}"
    if not 0 < streams < uses:
        return f"{streams} streams, the ticket admits {uses - 1}"
    return None


def migrate_in(name: str, lab: str, host: str, mgmt_listeners: list[socket.socket],
               vm_listeners: list[socket.socket], ticket_id: str,
               on_commit: Callable[[Guest], None]) -> Guest | None:
    with profiled("vmotion-target"):
        return _migrate_in(name, lab, host, mgmt_listeners, vm_listeners, ticket_id, on_commit)


def _migrate_in(name: str, lab: str, host: str, mgmt_listeners: list[socket.socket],
                vm_listeners: list[socket.socket], ticket_id: str,
                on_commit: Callable[[Guest], None]) -> Guest | None:
    """Receive a VM; the running Guest once verified and committed, None when aborted.

    Only connections that prove the migration's ticket (`ticket_id`, kind vmotion,
    issued for this host) are used: the management connection first, then one per
    stream; the AES key comes from that ticket, never from the wire (SEC-4).
    """
    deadline = time.monotonic() + ACCEPT_TIMEOUT
    mgmt_door = Door(mgmt_listeners, lab, host, ticket_id, "vmotion management")
    vm_door = Door(vm_listeners, lab, host, ticket_id, "vmotion")
    try:
        mgmt, admission = mgmt_door.take(deadline)
        mgmt.settimeout(ACCEPT_TIMEOUT)
        reader = LineReader(mgmt)
        hello = reader.read()
        if hello is None or hello.get("type") != "hello":
            return None
        bad = _bad_hello(hello, admission.ticket.uses)
        if bad is not None:  # nothing is allocated from what the peer merely declares
            send_line(mgmt, {"ok": False, "code": "BadHello", "reason": bad})
            return None
        can = registry.host_encryption(lab, host)
        key = admission.ticket.key
        use = can and hello.get("mode") != crypto.DISABLED and key is not None
        if hello.get("mode") == crypto.REQUIRED and not can:
            send_line(mgmt, {"ok": False, "encryption": False, "code": "SEC-1",
                             "reason": f"host {host} does not support encrypted vMotion"})
            return None
        memory = GuestMemory(int(hello["memory"]))
        incoming = Incoming(memory, key if use else None)
        seed = int(hello["seed"])  # the guest is built now: only its start is left for the stun
        guest = Guest(str(hello["vm"]), lab, host, seed, memory,
                      Workload(memory, int(hello["dirty_rate"]), seed))
        send_line(mgmt, {"ok": True, "encryption": can})
        for _ in range(int(hello["streams"])):
            incoming.serve(vm_door.take(deadline)[0])
    finally:
        mgmt_door.close()  # the listeners go: later connections are refused by the kernel
        vm_door.close()
    mgmt.settimeout(None)  # the source's own timeouts decide how long pre-copy may take
    with mgmt:
        while (message := reader.read()) is not None:
            kind = message.get("type")
            if kind == "probe":  # the source measures the switchover's costs
                t = time.perf_counter()  # first, the digest backlog: it is not a fixed cost
                blocks = incoming.digests.settle()
                settle = time.perf_counter() - t
                incoming.digests.combined()  # a fixed cost of the switchover: the source's
                # probe times it (a hash over the block digests: ~10 ms per GiB)
                send_line(mgmt, {"type": "probe", "settle_s": settle, "blocks": blocks})
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
