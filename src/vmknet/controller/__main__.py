"""`python -m vmknet.controller --lab=NAME --store=PATH`: the lab's controller process.

It enters the lab's controller namespace (where vCenter would sit: on the
management VLAN, reaching other hosts through the router), listens there on
its address, port 443, for the agents, and on `api.sock` for the CLI, and
reads the inventory from the store once per store version (`snapshot`). It also serves the
REST API (`vmknet.api`) on `rest.sock` and on 127.0.0.1 of the root namespace.

On an etcd store several controllers may run: each campaigns first (election.py),
only the elected one opens its doors, the others wait as standbys. A leader that
may have lost its lease exits at once (`FENCED`): it must not act as controller.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import os
import signal
import socket
import sys
import threading
import time
from typing import TYPE_CHECKING

from ..api import files, listen
from ..dataplane import naming
from ..dataplane.linux import netns
from ..events import Event
from ..inventory import Inventory
from ..mgmt import paths, spawn
from ..store import open_store
from ..store.etcd_client import parse, pin_namespace
from ..store.paths import is_etcd
from . import inventory_door, task_runners
from .election import DEFAULT_TTL, Leadership, candidate_name
from .leases import HostLeases
from .service import Controller
from .snapshot import InventorySnapshot
from .tasks import Tasks

if TYPE_CHECKING:
    from ..api.serve import RestServer


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="vmknet.controller")
    p.add_argument("--lab", required=True)
    p.add_argument("--store", required=True)
    p.add_argument("--listen", default=None, help="address[:port] (default: the lab's "
                   "controller address, port 443)")
    p.add_argument("--ready-fd", type=int, default=None)
    p.add_argument("--rest-port", type=int, default=None, help="the REST API on 127.0.0.1 "
                   "of the root namespace (default 8088, another if taken)")
    p.add_argument("--lease-ttl", type=int, default=DEFAULT_TTL, help="s, on an etcd store: "
                   "the controller's lease (a standby takes over within it)")
    args = p.parse_args(argv)
    spawn.detach()
    done = threading.Event()
    leadership = _elect(args, done)
    store = open_store(args.store)
    dc = store.read()[1]
    if dc.physical.controller is None:
        raise SystemExit("the lab has no controller address (physical.controller)")
    address, port = str(dc.physical.controller.address.ip), paths.MGMT_PORT
    if args.listen:
        address, _, given = args.listen.partition(":")
        port = int(given or port)
    folder = paths.controller_dir(args.lab)
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    def record(events: list[Event]) -> None:
        with store.transaction() as txn:
            txn.record(events)

    snapshot = InventorySnapshot(store)
    controller = Controller(folder, args.lab, snapshot, record=record)
    if leadership is not None:
        controller.hosts.liveness = _host_leases(args, done)
    # The CLI's changes are made here, by the controller's own facade (controller/writes.py).
    controller.local_extra.update(inventory_door.handlers(lambda: Inventory.open(args.store)))
    # vMotion, migration, clone: run here, started and watched by the CLI and the REST API.
    controller.tasks = Tasks(args.lab, lambda: snapshot(fresh=True), record,
                             task_runners.RUNNERS)
    controller.local_extra.update(controller.tasks.handlers())
    sock_path = paths.api_socket(args.lab)
    with contextlib.suppress(FileNotFoundError):
        sock_path.unlink()
    local = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    old = os.umask(0o177)  # the API socket is root's alone (mode 0600)
    try:
        local.bind(str(sock_path))
    finally:
        os.umask(old)
    local.listen(16)
    rest = _rest_listeners(args)  # before netns.enter: 127.0.0.1 of the root namespace
    netns.enter(naming.controller_ns(args.lab))  # every later socket is in that namespace
    mgmt = _management_listener(address, port, leadership is not None)
    controller.serve_management(mgmt)
    controller.serve_local(local)
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    spawn.ready(args.ready_fd)
    server = _serve_rest(args, controller, rest)
    done.wait()
    _stop_rest(args, server)
    controller.stop()
    with contextlib.suppress(FileNotFoundError):
        sock_path.unlink()
    if leadership is not None:
        with contextlib.suppress(OSError):  # wakes the accept thread, which holds it else
            mgmt.shutdown(socket.SHUT_RDWR)
        mgmt.close()  # the doors first: the next leader binds the same address and socket
        local.close()
        leadership.resign()
    return 0


# -- the election, on an etcd store (SQLite: one controller, none) ---------------------------

BIND_WAIT = 5.0  # s an elected controller retries its address while the last leader ends


def _management_listener(address: str, port: int, elected: bool) -> socket.socket:
    deadline = time.monotonic() + (BIND_WAIT if elected else 0.0)
    while True:
        try:
            return socket.create_server((address, port), backlog=64)
        except OSError as err:
            if err.errno != errno.EADDRINUSE or time.monotonic() >= deadline:
                raise
            time.sleep(0.05)

FENCED = 3  # exit status of a leader that may have lost its lease


def _elect(args: argparse.Namespace, done: threading.Event) -> Leadership | None:
    """Campaign until elected; then a guard ends this process once the lease may be gone."""
    if not is_etcd(args.store):
        return None
    pin_namespace()  # etcd is reached from here, also after entering the lab's namespace
    leadership = Leadership(args.store, candidate_name(), args.lease_ttl)
    if not leadership.election.try_lead():
        print(f"standby: {leadership.leader()} leads", file=sys.stderr, flush=True)
        spawn.ready(args.ready_fd)  # a standby is up once it campaigns
        args.ready_fd = None
        leadership.acquire()
    print(f"elected: {leadership.candidate}", file=sys.stderr, flush=True)

    def fence(why: str) -> None:
        if done.is_set():
            return  # stopping anyway: resign() revoked the lease
        print(f"fenced: {why}; exiting", file=sys.stderr, flush=True)
        os._exit(FENCED)  # no cleanup that could act as controller: the kernel closes all

    leadership.guard(fence)
    return leadership


def _host_leases(args: argparse.Namespace, done: threading.Event) -> HostLeases:
    """The agents' leases (leases.py), adopted from etcd before any door opens."""
    leases = HostLeases(parse(args.store), args.lease_ttl)
    leases.load()
    leases.start(done)
    return leases


# -- the REST API (vmknet.api): uvicorn in a thread, on sockets opened before netns.enter ----


def _rest_listeners(args: argparse.Namespace) -> list[socket.socket]:
    return listen.listen(args.lab, args.rest_port or listen.DEFAULT_PORT)


def _serve_rest(args: argparse.Namespace, controller: Controller,
                sockets: list[socket.socket]) -> RestServer:
    # Loaded after `ready`: FastAPI takes ~0.4 s to import, and lab up need not wait for it
    # (the listeners already queue connections).
    from ..api import serve
    from ..api.app import create_app
    from ..api.tokens import TokenBook

    app = create_app(controller, lambda: Inventory.open(args.store),
                     TokenBook(files.tokens_file(args.lab)))
    server = serve.RestServer(app, sockets)
    server.start()
    return server


def _stop_rest(args: argparse.Namespace, server: RestServer) -> None:
    server.stop()
    listen.forget(args.lab)


if __name__ == "__main__":
    raise SystemExit(main())
