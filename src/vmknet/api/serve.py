"""Serving the REST API from the controller process: uvicorn in a thread, on given sockets.

    sockets = listen.listen(lab, port)  # BEFORE the process enters the controller namespace
    netns.enter(...)
    server = RestServer(create_app(...), sockets); server.start(); ...; server.stop()

Two listeners: `<controller_dir>/rest.sock` (mode 0600, root's), and
127.0.0.1:<port> of the ROOT network namespace, for a browser on the machine.
That one is plain HTTP: it is loopback only, never a lab address, and every
call still needs a bearer token. The port is `listen.DEFAULT_PORT` unless another
lab's controller has it, then one the kernel picks; the URL actually served
is written to `<controller_dir>/rest.url` for `lab up` and the tests to read.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time

import uvicorn
from fastapi import FastAPI

START_TIMEOUT = 10.0


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
