"""The incoming VM's door (SEC-4): only connections with this migration's ticket get in.

    door = Door(listeners, lab, "esx02", ticket_id, "vmotion")
    sock, admission = door.take(deadline)      # the next admitted connection
    door.close()

A thread accepts on the listeners and admits every connection in a thread of
its own (trust.tickets.admit through nfc.gate), so a stranger that connects and
stays silent holds up nobody: the source's connections are admitted beside it
within the handshake timeout. A connection is handed out only when its ticket
is the one this incoming VM was started for (`ticket_id`, from the
orchestrator); any other is refused, recorded in the security log and closed.
"""

from __future__ import annotations

import contextlib
import queue
import select
import socket
import threading
import time

from ..nfc.gate import admitted, refuse
from ..trust.tickets import Admission

POLL = 0.2  # s: how fast close() stops the accept thread


class Door:
    def __init__(self, listeners: list[socket.socket], lab: str, host: str, ticket_id: str,
                 service: str, kind: str = "vmotion") -> None:
        self.listeners, self.lab, self.host = listeners, lab, host
        self.ticket_id, self.service, self.kind = ticket_id, service, kind  # kind: FT shares it
        self._admitted: queue.Queue[tuple[socket.socket, Admission]] = queue.Queue()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True,
                                        name=f"vmotion-door-{service}")
        self._thread.start()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                ready, _, _ = select.select(self.listeners, [], [], POLL)
            except (OSError, ValueError):
                return
            for listener in ready:
                try:
                    conn, _ = listener.accept()
                except OSError:
                    continue
                conn.setblocking(True)
                threading.Thread(target=self._admit, args=(conn,), daemon=True,
                                 name=f"vmotion-admit-{self.service}").start()

    def _admit(self, conn: socket.socket) -> None:
        got = admitted(conn, self.lab, self.host, self.kind, self.service)
        if got is None:
            return  # refused, recorded, closed
        if got.ticket.id != self.ticket_id:
            refuse(conn, self.lab, self.host, self.service, "ForeignTicket",
                   f"a {self.kind} ticket of {got.ticket.operation}, not of the operation "
                   "this incoming VM waits for")
            return
        if self._stop.is_set():
            with contextlib.suppress(OSError):
                conn.close()
            return
        self._admitted.put((conn, got))

    def take(self, deadline: float) -> tuple[socket.socket, Admission]:
        """The next connection admitted with this migration's ticket; TimeoutError at deadline."""
        try:
            return self._admitted.get(timeout=max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            raise TimeoutError(f"no {self.service} connection with the migration's ticket "
                               "from the source") from None

    def close(self) -> None:
        """Stop accepting, close the listeners and every admitted connection not taken."""
        self._stop.set()
        self._thread.join(2 * POLL + 1.0)
        for listener in self.listeners:
            with contextlib.suppress(OSError):
                listener.close()
        while True:
            try:
                conn, _ = self._admitted.get_nowait()
            except queue.Empty:
                return
            with contextlib.suppress(OSError):
                conn.close()
