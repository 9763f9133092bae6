"""Serving the REST API from the controller process: uvicorn in a thread, on given sockets.

    sockets = listen(lab, port)         # BEFORE the process enters the controller namespace
    netns.enter(...)
    server = RestServer(create_app(...), sockets); server.start(); ...; server.stop()

Two listeners: `<controller_dir>/rest.sock` (mode 0600, root's), and
127.0.0.1:<port> of the ROOT network namespace, for a browser on the machine.
That one is plain HTTP: it is loopback only, never a lab address, and every
call still needs a bearer token. The port is DEFAULT_PORT unless another
lab's controller has it, then one the kernel picks; the URL actually served
is written to `<controller_dir>/rest.url` for `lab up` and the tests to read.
"""

from __future__ import annotations

import contextlib
import errno
import os
import socket
import threading
import time
from pathlib import Path

import uvicorn
from fastapi import FastAPI

from ..mgmt.paths import controller_dir
from .files import rest_socket, url_file

DEFAULT_PORT = 8088
LOOPBACK = "127.0.0.1"
START_TIMEOUT = 10.0


def listen_loopback(port: int = DEFAULT_PORT) -> socket.socket:
    """A listening TCP socket on 127.0.0.1:`port` (another port if that one is taken)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((LOOPBACK, port))
    except OSError as err:
        if err.errno != errno.EADDRINUSE or port == 0:
            sock.close()
            raise
        sock.bind((LOOPBACK, 0))  # labs side by side: each controller its own port
    sock.listen(128)
    return sock


def listen_unix(path: Path) -> socket.socket:
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    old = os.umask(0o177)  # mode 0600 from the start: no window where others may connect
    try:
        sock.bind(str(path))
    finally:
        os.umask(old)
    sock.listen(128)
    return sock


def listen(lab: str, port: int = DEFAULT_PORT) -> list[socket.socket]:
    """Both listeners of `lab`'s API; the loopback URL is written to rest.url."""
    folder = controller_dir(lab)
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    tcp = listen_loopback(port)
    unix = listen_unix(rest_socket(lab))
    url = f"http://{LOOPBACK}:{tcp.getsockname()[1]}"
    tmp = url_file(lab).with_suffix(".tmp")
    tmp.write_text(url + "\n", encoding="utf-8")
    tmp.replace(url_file(lab))
    return [tcp, unix]


def forget(lab: str) -> None:
    """Remove the socket and URL files when the controller stops."""
    for path in (rest_socket(lab), url_file(lab)):
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


class RestServer:
    """uvicorn on already-open sockets, in a daemon thread (the process's main thread waits)."""

    def __init__(self, app: FastAPI, sockets: list[socket.socket]) -> None:
        self.sockets = sockets
        # log_config=None: the controller's logging stays as it is; no uvloop/httptools needed.
        config = uvicorn.Config(app, log_config=None, access_log=False, lifespan="off",
                                loop="asyncio", http="h11", ws="none",
                                timeout_keep_alive=5, limit_concurrency=256)
        self.server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self.server.run, args=(sockets,),
                                        name="rest-api", daemon=True)

    def start(self) -> None:
        self._thread.start()
        deadline = time.monotonic() + START_TIMEOUT
        while self._thread.is_alive() and not self.server.started \
                and time.monotonic() < deadline:
            time.sleep(0.02)
        if not self.server.started:
            raise RuntimeError("the REST API server did not start")

    def stop(self, timeout: float = 5.0) -> None:
        self.server.should_exit = True
        self._thread.join(timeout)
        for sock in self.sockets:
            with contextlib.suppress(OSError):
                sock.close()
