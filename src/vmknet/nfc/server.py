"""The NFC server of one lab host: TCP 902 on exactly the adapters that may carry provisioning.

    server = NfcServer(dc, lab, "esx02", Datastores(tmp)).start()   # in-process, threads
    ...
    server.refresh(new_dc)   # EX-4: listen where provisioning goes now; connections stay
    server.stop()

    python -m vmknet.nfc.server --lab=LAB --host=esx02 [--store=DB] [--base=DIR]

The listeners come from traffic.sockets.listen(dc, lab, host, PROVISIONING,
902) (PATH-2: provisioning-stack adapters, else tagged default-stack ones,
else management), so the server never listens anywhere else. As a process it
records itself in /run/vmknet/labs/<lab>/nfc/<host>.json and exits when that
record or its host's namespaces disappear (`lab down`), or on SIGTERM.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import select
import signal
import socket
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..model import Datacenter, Service
from ..resolve import Endpoint, effective_adapters
from ..traffic.place import LabRef, adapter_addresses, lab_name, stack_ns
from ..traffic.sockets import Listener, close_all, listen
from . import registry
from .files import Datastores
from .gate import admitted
from .protocol import PORT
from .session import Session

POLL = 0.25  # s: how fast stop() and a vanished lab are noticed


def _key(listener: Listener) -> tuple[str, str, str]:
    e = listener.endpoint
    return (e.vmknic, e.netstack, str(e.address))


def _chosen(dc: Datacenter, host: str, service: Service) -> set[tuple[str, str, str]]:
    """The (adapter, stack, address) set listen() would bind for `service` on `host`."""
    return {(vmk, dc.host(host).vmknics[vmk].netstack, str(a))
            for vmk, _ in effective_adapters(dc, host, service)
            for a in adapter_addresses(dc, host, vmk)}


class NfcServer:
    def __init__(self, dc: Datacenter, lab: LabRef, host: str, stores: Datastores | None = None,
                 port: int = PORT, service: Service = Service.PROVISIONING) -> None:
        # `service`: PROVISIONING for NFC (PATH-2); REPLICATION_NFC for the replica end (PATH-4)
        self.dc, self.lab, self.host, self.service = dc, lab_name(lab), host, service
        self.stores = stores or Datastores.default()
        self.port = port
        self.listeners: list[Listener] = []
        self._sessions: set[Session] = set()
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()

    @property
    def _audit_service(self) -> str:
        return "nfc" if self.service is Service.PROVISIONING else f"nfc ({self.service.tag})"

    @property
    def endpoints(self) -> list[Endpoint]:
        return [lst.endpoint for lst in self.listeners]

    def start(self) -> NfcServer:
        self.refresh(self.dc)
        return self

    def refresh(self, dc: Datacenter) -> None:
        """Listen on the adapters that receive provisioning in `dc` (EX-4 may have moved them).

        Running sessions are never touched: a copy in flight finishes on the
        adapters it started on (EX-2 via EX-4); only new connections see the change.
        """
        with self._lock:
            self.dc = dc
            if self.listeners and {_key(x) for x in self.listeners} == _chosen(dc, self.host,
                                                                           self.service):
                return
            # One listening socket per address and port: the old ones go before the new bind.
            close_all(self.listeners)
            self.listeners = listen(dc, self.lab, self.host, self.service, self.port)
            for lst in self.listeners:
                thread = threading.Thread(target=self._accept, args=(lst,), daemon=True,
                                          name=f"nfc-accept-{self.host}-{lst.endpoint.vmknic}")
                self._threads.append(thread)
                thread.start()

    def _accept(self, lst: Listener) -> None:
        while not self._stop.is_set():
            try:
                ready, _, _ = select.select([lst.sock], [], [], POLL)
                if not ready:
                    continue
                sock, _ = lst.accept(timeout=POLL)
            except (OSError, ValueError):  # closed by refresh() or stop()
                return
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            session = Session(sock, self.lab, self.host, self.stores)
            thread = threading.Thread(target=self._serve, args=(session,), daemon=True,
                                      name=f"nfc-session-{self.host}")
            with self._lock:
                self._sessions.add(session)
                self._threads.append(thread)
            thread.start()

    def _serve(self, session: Session) -> None:
        try:
            # SEC-4: the peer proves its ticket before the first NFC byte; a refused
            # peer is recorded and closed without a single request served.
            if admitted(session.sock, self.lab, self.host, "nfc", self._audit_service) is None:
                return
            session.serve()
        finally:
            with self._lock:
                self._sessions.discard(session)

    def drop_connections(self) -> int:
        """Break every running session, as a failing network would (tests, fault drills)."""
        with self._lock:
            sessions = list(self._sessions)
        for s in sessions:
            with contextlib.suppress(OSError):
                s.sock.shutdown(socket.SHUT_RDWR)
        return len(sessions)

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self.drop_connections()
        close_all(self.listeners)
        for thread in list(self._threads):
            thread.join(timeout)
        self.listeners, self._threads = [], []

    def __enter__(self) -> NfcServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


# ------------------------------------------------------------------ process entry


def _load_dc(lab: str, store: str | None) -> tuple[Datacenter, Callable[[], Datacenter | None]]:
    """The datacenter of the lab's store, and a poll that returns it when it changed."""
    from ..inventory import Inventory
    from ..lab.registry import store_of

    path = Path(store) if store else store_of(lab)
    if path is None:
        raise SystemExit(f"no store for lab {lab}: give --store")
    inv = Inventory.open(path)
    version, dc = inv.store.read()
    seen = [version]

    def poll() -> Datacenter | None:
        v, new = inv.store.read()
        if v == seen[0]:
            return None
        seen[0] = v
        return new

    return dc, poll


def main(argv: list[str] | None = None) -> int:
    args = argparse.ArgumentParser(prog="python -m vmknet.nfc.server")
    args.add_argument("--lab", required=True)
    args.add_argument("--host", required=True)
    args.add_argument("--store", help="the lab's inventory store (default: lab registry)")
    args.add_argument("--base", help="datastore base directory (default: $VMKNET_DATASTORE_BASE"
                      " or /var/lib/vmknet/labs)")
    args.add_argument("--port", type=int, default=PORT)
    opts = args.parse_args(argv)
    dc, poll = _load_dc(opts.lab, opts.store)
    stores = Datastores(Path(opts.base)) if opts.base else Datastores.default()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    server = NfcServer(dc, opts.lab, opts.host, stores, opts.port).start()
    info: dict[str, Any] = {"pid": os.getpid(), "host": opts.host, "port": opts.port,
                            "listen": [f"{e.vmknic} {e.address.ip}" for e in server.endpoints]}
    record = registry.record(opts.lab, opts.host, info)
    mgmt_ns = Path("/run/netns") / stack_ns(opts.lab, opts.host, "defaultTcpipStack")
    try:
        print(f"NFC server {opts.host} listening: {', '.join(info['listen'])}", flush=True)
        while not stop.wait(POLL):
            if not record.exists() or not mgmt_ns.exists():
                break  # lab down removed the lab: go with it
            new = poll()
            if new is not None:
                server.refresh(new)
    finally:
        server.stop()
        registry.forget(opts.lab, opts.host, os.getpid())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
