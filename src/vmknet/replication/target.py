"""The target host's replication NFC endpoint: NFC sessions on its vSphereReplicationNFC adapters.

The host's NfcServer (nfc/server.py) listens on the *provisioning* adapters
(PATH-2). Replication writes must arrive on the *vSphereReplicationNFC* adapters
(else management, PATH-4), so this second endpoint listens with
traffic.sockets.listen(dc, lab, host, REPLICATION_NFC, 902) and serves the same
NFC protocol with the same nfc.session.Session; nfc/ is not changed. When an
address is already bound on 902 (both services fell back to vmk0 and the host's
NfcServer runs there), that server speaks the same protocol on the same adapter,
so the endpoint shares it instead of failing (`shared`).
"""

from __future__ import annotations

import contextlib
import errno
import select
import socket
import threading

from ..errors import DataplaneError
from ..model import Datacenter, Service
from ..nfc.files import Datastores
from ..nfc.protocol import PORT
from ..nfc.session import Session
from ..resolve import Endpoint
from ..traffic.place import LabRef, lab_name
from ..traffic.sockets import Listener, close_all, listen

POLL = 0.25


class ReplicaNfc:
    def __init__(self, dc: Datacenter, lab: LabRef, host: str, stores: Datastores,
                 port: int = PORT) -> None:
        self.dc, self.lab, self.host, self.stores, self.port = dc, lab_name(lab), host, stores, port
        self.listeners: list[Listener] = []
        self.shared = False
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._socks: list[socket.socket] = []

    @property
    def endpoints(self) -> list[Endpoint]:
        return [x.endpoint for x in self.listeners]

    def start(self) -> ReplicaNfc:
        try:
            self.listeners = listen(self.dc, self.lab, self.host, Service.REPLICATION_NFC,
                                    self.port)
        except DataplaneError as err:
            if err.details.get("errno") != errno.EADDRINUSE:
                raise
            self.shared = True  # the host's NfcServer already serves this adapter on 902
        for lst in self.listeners:
            self._spawn(self._accept, lst)
        return self

    def _spawn(self, target: object, *args: object) -> None:
        t = threading.Thread(target=target, args=args, daemon=True,  # type: ignore[arg-type]
                             name=f"repl-nfc-{self.host}")
        self._threads.append(t)
        t.start()

    def _accept(self, lst: Listener) -> None:
        while not self._stop.is_set():
            try:
                ready, _, _ = select.select([lst.sock], [], [], POLL)
                if not ready:
                    continue
                sock, _ = lst.accept(timeout=POLL)
            except (OSError, ValueError):
                return
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self._socks.append(sock)
            self._spawn(Session(sock, self.lab, self.host, self.stores).serve)

    def stop(self) -> None:
        self._stop.set()
        for s in self._socks:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
        close_all(self.listeners)
        for t in self._threads:
            t.join(5.0)
        self.listeners, self._threads = [], []

    def __enter__(self) -> ReplicaNfc:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
