"""The controller's management door on one event loop: every agent connection, one thread.

A thread per agent connection cost the controller ~10% of a core with 1,000
agents heartbeating once a second, before it did any work (docs/mgmt-bench.md:
the bare thread-per-connection echo); asyncio's TLS streams serve the same
heartbeats in one thread for about two thirds of that. The rules stay: TLS 1.3
with the lab's CA; a peer without a certificate may only `join` (one request);
a host's certificate may call the host's methods (`Controller._host_methods`,
whose heartbeat checks the source is one of that host's management addresses);
every frame's length is checked before it is read; a connection silent for
`idle` seconds (one in the middle of a frame, a handshake or a join: `timeout`)
is closed by a sweep, not by a timer per read.

A heartbeat is answered on the loop (it only reads the host table and the
inventory snapshot); every other method (a join signs a certificate, a confirm
is a long poll, a desired state is rendered) runs on a worker thread, so no
agent waits behind another's slow call.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
import threading
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor

from ..errors import VmknetError
from ..mgmt import wire
from ..trust import pki

FAST = frozenset({"heartbeat"})  # answered on the loop: a dictionary update and a reply
# Threads for the other methods, made as needed: a confirm long poll holds one (a batch of
# hundreds of hosts may each poll when the controller's word did not reach them in 1 s).
WORKERS = 256

# (peer address) -> the handlers a joining peer may call; (host, peer address) -> a host's
Handlers = Mapping[str, wire.Handler]


class ManagementDoor:
    def __init__(self, listener: socket.socket, context: ssl.SSLContext,
                 joining: Callable[[str], Handlers], host: Callable[[str, str], Handlers],
                 join_limit: int, limit: int, timeout: float, idle: float) -> None:
        self.listener, self.context = listener, context
        self.joining, self.host = joining, host
        self.join_limit, self.limit = join_limit, limit
        self.timeout, self.idle = timeout, idle
        self.loop = asyncio.new_event_loop()
        self.workers = ThreadPoolExecutor(WORKERS, thread_name_prefix="mgmt-door")
        self._server: asyncio.base_events.Server | None = None
        # Each connection's deadline for its next complete request (loop time); a sweeper
        # closes the late ones, where a timer per read cost more than the read itself.
        self._deadlines: dict[asyncio.StreamWriter, float] = {}
        self._thread = threading.Thread(target=self._run, name="mgmt-door", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        if self.loop.is_running():
            self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=5)
        self.workers.shutdown(wait=False, cancel_futures=True)

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self._server = self.loop.run_until_complete(asyncio.start_server(
            self._connection, sock=self.listener, ssl=self.context,
            ssl_handshake_timeout=self.timeout, limit=self.limit + wire.LENGTH.size))
        sweeper = self.loop.create_task(self._sweep())
        try:
            self.loop.run_forever()
        finally:
            sweeper.cancel()
            self._server.close()
            with contextlib.suppress(Exception):
                self.loop.run_until_complete(self._server.wait_closed())
            self.loop.close()

    async def _sweep(self) -> None:
        while True:
            await asyncio.sleep(min(self.timeout, self.idle) / 4)
            now = self.loop.time()
            for writer in [w for w, t in self._deadlines.items() if t < now]:
                del self._deadlines[writer]
                writer.transport.abort()  # a silent or stuck peer: its reads end at once

    async def _connection(self, reader: asyncio.StreamReader,
                          writer: asyncio.StreamWriter) -> None:
        peername = writer.get_extra_info("peername")
        peer = str(peername[0]) if isinstance(peername, tuple) else ""
        tls = writer.get_extra_info("ssl_object")
        self._deadlines[writer] = self.loop.time() + self.timeout
        try:
            if tls is None or not tls.getpeercert(binary_form=True):
                # No certificate yet: one join, then the connection ends.
                await self._serve_one(reader, writer, self.joining(peer), self.join_limit)
                return
            who = pki.peer(tls, pki.HOST)
            handlers = self.host(who.name, peer)
            while await self._serve_one(reader, writer, handlers, self.limit):
                self._deadlines[writer] = self.loop.time() + self.idle
        except (OSError, VmknetError, ValueError, asyncio.IncompleteReadError):
            pass  # a stranger, a broken peer or a silent one: the connection just ends
        finally:
            self._deadlines.pop(writer, None)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _serve_one(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                         handlers: Handlers, limit: int) -> bool:
        """One request and its reply; False when the peer closed between requests."""
        try:
            header = await reader.readexactly(wire.LENGTH.size)
        except asyncio.IncompleteReadError as err:
            if err.partial:
                raise
            return False
        request = wire.decode(await reader.readexactly(wire.size(header, limit)))
        self._deadlines[writer] = float("inf")  # a held answer (a long poll) is not silence
        if request.get("method") in FAST:
            answer = wire.reply(handlers, request)
        else:
            answer = await self.loop.run_in_executor(self.workers, wire.reply, handlers,
                                                     request)
        writer.write(wire.frame(answer))
        await writer.drain()
        return True
