"""The server side of bench_mgmt.py, one process: the real controller, or a bare TLS baseline.

    python bench/mgmt_controller.py controller --folder F --hosts N [--inventory memory|store]
    python bench/mgmt_controller.py echo-threads --folder F
    python bench/mgmt_controller.py echo-threads-timeout --folder F
    python bench/mgmt_controller.py echo-async --folder F

`controller` is started the way `python -m vmknet.controller` starts it (a
`Controller` over a CA in its folder, the management door on a TCP listener
with backlog 64, the local door on `api.sock`, the REST API by uvicorn in a
thread on `listen.listen_loopback`; the bench adds a second loopback listener
with TCP_NODELAY, see `tcp_listener`), without entering a lab namespace: it listens
on 127.0.0.1 and its inventory is the bench's datacenter of N hosts with
management addresses 127.1.x.y (mgmt_common). With `--inventory store` the
inventory is the lab controller's own: an `InventorySnapshot` of a SQLite store
(re-read only when the store's version moves); `memory` (default)
hands out one datacenter object built once.

The two baselines speak the same protocol to the same agents with the
controller's own certificate (so the agents' checks pass), and do no
controller work: each heartbeat gets a fixed reply.
- echo-threads: the controller's design (a thread per connection, blocking ssl);
- echo-threads-timeout: the same with the controller's socket timeout on each
  connection (`settimeout`: every read becomes poll() + read);
- echo-async:   one asyncio event loop for every connection.

Each prints one JSON line `{"kind": "ready", ...}` and runs until SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import resource
import signal
import socket
import ssl
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from mgmt_common import datacenter, frame, read_frame, say
from vmknet.errors import VmknetError
from vmknet.mgmt import wire
from vmknet.model import Datacenter
from vmknet.trust import pki

BACKLOG = 64  # as vmknet.controller.__main__
REPLY = {"links": [["127.1.0.1", "vmk0"]]}  # a heartbeat reply of the usual size


def raise_fd_limit() -> None:
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # a socket per agent


def tcp_listener() -> socket.socket:
    """127.0.0.1:<any> made with proto=IPPROTO_TCP: asyncio sets TCP_NODELAY only on a
    socket whose `proto` says TCP, and `listen.listen_loopback` leaves it 0, so uvicorn's
    responses there (headers and body in two writes) wait for the client's delayed ACK.
    The bench serves the same app on both to show what that costs."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    return sock


def run_controller(args: argparse.Namespace, done: threading.Event) -> None:
    from vmknet.api import listen, serve
    from vmknet.api.app import create_app
    from vmknet.api.tokens import TokenBook
    from vmknet.controller.service import Controller
    from vmknet.controller.snapshot import FixedInventory, InventorySnapshot
    from vmknet.inventory import Inventory
    from vmknet.store import Store

    folder = Path(args.folder)
    dc = datacenter(args.hosts)
    store_path = folder / "inventory.sqlite"
    store = Store(store_path)
    with store.transaction() as txn:
        txn.save(dc)
    inventory: Callable[[], Datacenter] = (
        InventorySnapshot(store) if args.inventory == "store" else FixedInventory(dc))
    controller = Controller(folder / "controller", "bench", inventory, port=args.agent_port)
    local_path = folder / "api.sock"
    local = listen.listen_unix(local_path)
    mgmt = socket.create_server(("127.0.0.1", 0), backlog=BACKLOG)
    controller.serve_management(mgmt)
    controller.serve_local(local)
    rest = listen.listen_loopback(0)  # as the controller opens it
    nodelay = tcp_listener()
    app = create_app(controller, lambda: Inventory.open(store_path),
                     TokenBook(folder / "api-tokens.json"))
    server = serve.RestServer(app, [rest, nodelay])
    server.start()
    say("ready", pid=os.getpid(), port=mgmt.getsockname()[1], api=str(local_path),
        rest=f"http://127.0.0.1:{rest.getsockname()[1]}",
        restNodelay=f"http://127.0.0.1:{nodelay.getsockname()[1]}",
        ca=pki.fingerprint(controller.ca.cert_pem))
    done.wait()
    server.stop()
    controller.stop()


def _credential_context(folder: Path) -> ssl.SSLContext:
    tls = folder / "controller" / "tls"
    return pki.server_context(pki.Credential.load(tls), tls)


def run_echo_threads(args: argparse.Namespace, done: threading.Event) -> None:
    ctx = _credential_context(Path(args.folder))
    listener = socket.create_server(("127.0.0.1", 0), backlog=BACKLOG)
    timeout = 15.0 if args.mode == "echo-threads-timeout" else None  # 3 * AGENT_TIMEOUT

    def serve(conn: socket.socket) -> None:
        conn.settimeout(timeout)
        with contextlib.suppress(OSError, VmknetError, ValueError), conn, \
                ctx.wrap_socket(conn, server_side=True) as tls:
            pki.peer(tls, pki.HOST)
            while True:
                request = wire.recv(tls, 64 * 1024)
                wire.send(tls, {"id": request.get("id"), "result": REPLY})

    def accept() -> None:
        while True:
            conn, _ = listener.accept()
            threading.Thread(target=serve, args=(conn,), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    say("ready", pid=os.getpid(), port=listener.getsockname()[1])
    done.wait()


def run_echo_async(args: argparse.Namespace, done: threading.Event) -> None:
    ctx = _credential_context(Path(args.folder))

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError, VmknetError, ValueError, asyncio.IncompleteReadError):
            ssl_object: Any = writer.get_extra_info("ssl_object")
            if pki.identity(ssl_object.getpeercert(binary_form=True)).role != pki.HOST:
                return
            while (request := await read_frame(reader, 64 * 1024)) is not None:
                writer.write(frame({"id": request.get("id"), "result": REPLY}))
                await writer.drain()
        writer.close()

    async def main() -> None:
        server = await asyncio.start_server(serve, "127.0.0.1", 0, ssl=ctx, backlog=BACKLOG)
        say("ready", pid=os.getpid(), port=server.sockets[0].getsockname()[1])
        await asyncio.get_running_loop().run_in_executor(None, done.wait)
        server.close()

    asyncio.run(main())


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("mode", choices=("controller", "echo-threads", "echo-threads-timeout",
                                    "echo-async"))
    p.add_argument("--folder", required=True)
    p.add_argument("--hosts", type=int, default=50)
    p.add_argument("--agent-port", type=int, default=8443)
    p.add_argument("--inventory", choices=("memory", "store"), default="memory")
    args = p.parse_args(argv)
    raise_fd_limit()
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    run = {"controller": run_controller, "echo-threads": run_echo_threads,
           "echo-threads-timeout": run_echo_threads, "echo-async": run_echo_async}[args.mode]
    run(args, done)
    return 0


if __name__ == "__main__":
    sys.exit(main())
