"""The source's streams: one sender thread per adapter pair, sharing each round's chunks.

Chunks are pulled from one queue, so a faster pair takes more (striping that
follows each path's speed, PATH-1). A round ends with a barrier: every live
stream sends ROUND_END and waits for the target's ACK. A stream that fails
(send error, or no progress within `timeout`: its uplinks went down) is dropped
and the chunks it sent in this round, which may be lost in its socket buffer,
go back to the queue for the others. Only when every stream has failed does the
migration fail.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
import time
from collections import deque
from collections.abc import Callable

import numpy as np

from ..profiling import profiled
from ..vm.memory import GuestMemory
from ..vm.units import PAGE_SIZE
from . import protocol
from .crypto import OVERHEAD, Sealer
from .precopy import Chunk, segments
from .report import PairStat


class AllStreamsFailed(Exception):
    """No adapter pair can carry the migration any more."""


class Stream:
    def __init__(self, index: int, sock: socket.socket, stat: PairStat, timeout: float,
                 sealer: Sealer | None = None, rate_limit: float | None = None,
                 packed: bool = False) -> None:
        self.index = index
        self.sock = sock
        self.stat = stat
        self.sealer = sealer
        self.rate_limit = rate_limit  # bytes/s, a test and bench hook: a slower network
        self.packed = packed  # CHUNK frames (vMotion); PAGES/ZERO runs (FT checkpoints)
        self.crypto_seconds = 0.0
        if packed:
            # A blocking socket with the kernel's own timeouts: one sendmsg sleeps in the
            # kernel until the whole chunk is queued (one GIL hand-off per MiB), where
            # Python's timeout mode polls and re-takes the GIL for each partial send.
            # No progress within `timeout` is still an OSError (EAGAIN), as before.
            sock.settimeout(None)
            tv = struct.pack("ll", int(timeout), int((timeout % 1) * 1e6))
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, tv)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, tv)
        else:
            sock.settimeout(timeout)
        # The socket buffer is what a dead pair loses: keep it moderate (4 MiB).
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 << 20)

    @property
    def alive(self) -> bool:
        return self.stat.failed is None

    def send_chunk(self, mem: GuestMemory, rnd: int, chunk: Chunk) -> tuple[int, int, int]:
        """Send one chunk: (data pages, zero pages, wire bytes)."""
        if self.packed:
            return self._send_packed(mem, rnd, chunk)
        first, count = chunk
        nonzero = mem.pages[first:first + count].any(axis=1)
        pages = zeros = wire = 0
        for start, n, zero in segments(np.asarray(nonzero), first):
            if zero:
                self.sock.sendall(protocol.pack(protocol.ZERO, rnd, start, n))
                zeros += n
                continue
            view = mem.view(start, n)
            if self.sealer is None:
                self.sock.sendall(protocol.pack(protocol.PAGES, rnd, start, n, len(view)))
                self.sock.sendall(view)  # straight from guest memory: no copy in Python
                wire += len(view)
            else:
                header = protocol.pack(protocol.PAGES, rnd, start, n, len(view) + OVERHEAD)
                t = time.perf_counter()
                sealed = self.sealer.seal(header, view)
                self.crypto_seconds += time.perf_counter() - t
                self.sock.sendall(header)
                self.sock.sendall(sealed)
                wire += len(sealed)
            pages += n
        return pages, zeros, wire

    def _send_packed(self, mem: GuestMemory, rnd: int, chunk: Chunk) -> tuple[int, int, int]:
        """One CHUNK frame: header, bitmap and the data runs gathered by one sendmsg,
        straight from guest memory (plain), or sealed as one AEAD message (encrypted)."""
        first, count = chunk
        nonzero = np.asarray(mem.pages[first:first + count].any(axis=1))
        bitmap = np.packbits(nonzero, bitorder="little").tobytes()
        runs = [mem.view(start, n) for start, n, zero in segments(nonzero, first) if not zero]
        pages = int(np.count_nonzero(nonzero))
        length = len(bitmap) + pages * PAGE_SIZE
        if self.sealer is None:
            protocol.send_all(self.sock, [protocol.pack(protocol.CHUNK, rnd, first, count,
                                                        length), bitmap, *runs])
            return pages, count - pages, length
        header = protocol.pack(protocol.CHUNK, rnd, first, count, length + OVERHEAD)
        t = time.perf_counter()
        nonce, sealed = self.sealer.seal_parts(header, b"".join([bitmap, *runs]))
        self.crypto_seconds += time.perf_counter() - t
        protocol.send_all(self.sock, [header, nonce, sealed])
        return pages, count - pages, len(nonce) + len(sealed)

    def barrier(self, rnd: int) -> None:
        self.sock.sendall(protocol.pack(protocol.ROUND_END, rnd))
        frame = protocol.read_frame(self.sock)
        if frame.kind != protocol.ACK or frame.round != rnd:
            raise protocol.ProtocolError(f"expected ACK of round {rnd}, got {frame}")

    def close(self, bye: bool) -> None:
        if bye:
            with contextlib.suppress(OSError):
                self.sock.sendall(protocol.pack(protocol.BYE, 0))
        with contextlib.suppress(OSError):
            self.sock.close()


class RoundTotals:
    def __init__(self) -> None:
        self.pages = self.zeros = self.bytes = 0
        self.lock = threading.Lock()

    def add(self, pages: int, zeros: int, wire: int) -> None:
        with self.lock:
            self.pages += pages
            self.zeros += zeros
            self.bytes += wire


def run_round(streams: list[Stream], mem: GuestMemory, rnd: int, work: list[Chunk],
              on_fail: Callable[[Stream], None] = lambda s: None) -> RoundTotals:
    """Send `work` over the live streams and pass the barrier; redo a failed stream's part."""
    totals = RoundTotals()
    queue: deque[Chunk] = deque(work)
    lost: list[Chunk] = []
    lock = threading.Lock()

    def sender(stream: Stream) -> None:
        with profiled(f"vmotion-send{stream.index}"):
            _sender(stream)

    def _sender(stream: Stream) -> None:
        mine: list[Chunk] = []
        started = time.perf_counter()
        sent = 0
        try:
            while True:
                with lock:
                    if not queue:
                        break
                    chunk = queue.popleft()
                mine.append(chunk)
                pages, zeros, wire = stream.send_chunk(mem, rnd, chunk)
                totals.add(pages, zeros, wire)
                stream.stat.bytes += wire
                stream.stat.pages += pages
                sent += wire
                _pace(stream, started, sent)
            stream.barrier(rnd)
        except (OSError, protocol.ProtocolError) as err:
            stream.stat.failed = f"round {rnd}: {err.strerror or err}" if isinstance(
                err, OSError) else f"round {rnd}: {err}"
            with lock:
                lost.extend(mine)
            with contextlib.suppress(OSError):
                stream.sock.shutdown(socket.SHUT_RDWR)
            on_fail(stream)
        finally:
            stream.stat.seconds += time.perf_counter() - started

    while True:
        live = [s for s in streams if s.alive]
        if not live:
            raise AllStreamsFailed("every vMotion adapter pair failed: "
                                   + "; ".join(f"{s.stat.source_vmk}->{s.stat.target_vmk} "
                                               f"{s.stat.failed}" for s in streams))
        threads = [threading.Thread(target=sender, args=(s,), name=f"vmotion-{s.index}")
                   for s in live]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        if not lost and all(s.alive for s in live):
            return totals
        queue.extend(lost)  # a stream died: the others redo what it may not have delivered
        lost.clear()


def _pace(stream: Stream, started: float, sent: int) -> None:
    if stream.rate_limit:
        ahead = sent / stream.rate_limit - (time.perf_counter() - started)
        if ahead > 0:
            time.sleep(ahead)


__all__ = ["PAGE_SIZE", "AllStreamsFailed", "Stream", "run_round"]
