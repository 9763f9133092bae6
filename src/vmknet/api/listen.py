"""The REST API's listeners, opened by the controller before it enters its namespace.

Only the standard library here: the controller opens these early (and
signals ready) without loading FastAPI; `serve.RestServer` serves them later.
See `serve` for the two listeners and why the loopback one is plain HTTP.
"""

from __future__ import annotations

import contextlib
import errno
import os
import socket
from pathlib import Path

from ..mgmt.paths import controller_dir
from .files import rest_socket, url_file

DEFAULT_PORT = 8088
LOOPBACK = "127.0.0.1"


def listen_loopback(port: int = DEFAULT_PORT) -> socket.socket:
    """A listening TCP socket on 127.0.0.1:`port` (another port if that one is taken)."""
    # IPPROTO_TCP, not 0: asyncio turns Nagle off only for sockets that say they are TCP, and
    # with Nagle on every small response waits ~40 ms for the client's delayed ACK.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
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
