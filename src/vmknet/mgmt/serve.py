"""The accept loop both doors of the management plane run (controller and host agent).

One thread per connection, each made by `spawn`; the loop wakes twice a second to
see `stop`, and ends when its listener is closed.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable

Handle = Callable[[socket.socket, str], None]  # (connection, peer address)
WAKE = 0.5  # s between looks at `stop`


def accept_loop(listener: socket.socket, stop: threading.Event, handle: Handle,
                spawn: Callable[..., object]) -> None:
    listener.settimeout(WAKE)
    while not stop.is_set():
        try:
            conn, peer = listener.accept()
        except TimeoutError:
            continue
        except OSError:
            return  # the listener was closed
        spawn(handle, conn, str(peer[0]) if isinstance(peer, tuple) else "")
