"""Output commit: what a protected VM shows the outside leaves only once its checkpoint is acked.

The guest's output is a numbered record stream (record n is `record(n)`), produced at
`rate` records per second while the guest runs, served to clients on a TCP port of the
host's management adapter: a client sends `from N\\n` and receives records N, N+1, ...
as they are released. At a checkpoint's pause the primary notes how many records the
guest has produced (`mark`); they are released only when that checkpoint is acked.
The mark travels inside the checkpoint, so a secondary that goes live from checkpoint
N knows every record the outside may have seen and continues after them: a client
that reconnects with the next number it wants misses nothing and sees nothing twice.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Callable

from ..dataplane.linux import netns

RECORD_TICK = 0.005  # s: the guest emits its records in small bursts
SEND_RECORDS = 4096  # records per send at most (~80 kB)


def record(n: int) -> bytes:
    """Record n of the stream: its number and a check value a client can recompute."""
    return f"{n} {(n * 2654435761) % 2**32:08x}\n".encode()


class Output:
    def __init__(self, rate: float, running: Callable[[], bool], produced: int = 0) -> None:
        self.rate = rate
        self.running = running  # the guest runs: a paused guest emits nothing
        self.produced = produced  # records the guest has emitted (guest state)
        self.released = produced  # records the outside may see (acked)
        self.commit = True  # False: unprotected, every record leaves at once
        self.lock = threading.Lock()  # held by the checkpoint's pause while it reads `produced`
        self._changed = threading.Condition()
        self._stop = threading.Event()
        self._listener: socket.socket | None = None

    def start(self, ns: str | int, address: str, port: int) -> None:
        """Serve on address:port inside namespace `ns`, and start emitting."""
        family = socket.AF_INET6 if ":" in address else socket.AF_INET
        sock = netns.in_netns(ns, lambda: socket.socket(family, socket.SOCK_STREAM))
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((address, port))
        sock.listen(16)
        sock.settimeout(0.2)
        self._listener = sock
        threading.Thread(target=self._emit, name="vm-output", daemon=True).start()
        threading.Thread(target=self._accept, name="vm-output-accept", daemon=True).start()

    def mark(self) -> int:
        """At a checkpoint's pause: the records this checkpoint stands for."""
        with self.lock:
            return self.produced

    def release(self, upto: int) -> None:
        """Checkpoint acked: records below `upto` may leave."""
        with self._changed:
            self.released = max(self.released, upto)
            self._changed.notify_all()

    def unprotected(self) -> None:
        """ft off, or this side won the arbiter alone: records leave as they are made."""
        self.commit = False
        with self._changed:
            self._changed.notify_all()

    def protect(self) -> None:
        """Protected again (re-protection): what is out is out, later records wait."""
        with self._changed:
            self.released = max(self.released, self.produced)
            self.commit = True
            self._changed.notify_all()

    def _visible(self) -> int:
        return self.released if self.commit else self.produced

    def close(self) -> None:
        self._stop.set()
        if self._listener is not None:
            with contextlib.suppress(OSError):
                self._listener.close()
        with self._changed:
            self._changed.notify_all()

    def _emit(self) -> None:
        carry, last = 0.0, time.monotonic()
        while not self._stop.wait(RECORD_TICK):
            now = time.monotonic()
            with self.lock:
                if self.running():
                    carry += (now - last) * self.rate
                    n = int(carry)
                    carry -= n
                    self.produced += n
            last = now

    def _accept(self) -> None:
        assert self._listener is not None
        while not self._stop.is_set():
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        with conn:
            conn.settimeout(5.0)
            try:
                line = conn.makefile("rb").readline(64).split()
                # A client names where it starts, never how much we build: a number below 0
                # is 0, and each send holds at most SEND_RECORDS records.
                n = max(0, int(line[1])) if len(line) == 2 and line[0] == b"from" else 0
                while not self._stop.is_set():
                    with self._changed:
                        while self._visible() <= n and not self._stop.is_set():
                            self._changed.wait(0.5 if self.commit else RECORD_TICK)
                        upto = min(self._visible(), n + SEND_RECORDS)
                    conn.sendall(b"".join(record(i) for i in range(n, upto)))
                    n = upto
            except (OSError, ValueError):
                return
