"""One active controller among several on an etcd store: campaign, hold, fence.

    leadership = Leadership("etcd://127.0.0.1:2379/dc1", "ctl-host-1234", ttl=5)
    leadership.acquire(stop)           # blocks until elected (True) or `stop` is set
    leadership.guard(on_lost)          # a thread: on_lost(why) once the lease may be gone
    leadership.resign()                # SIGTERM: the standby need not wait a TTL

Election itself is store/coordination.py's (the `controller/leader` key, bound
to the candidate's lease). What this adds is fencing: the lease's keepalives
run in a thread, and the guard compares the time with the lease's deadline
(the last keepalive etcd answered, counted from before it was sent, plus the
TTL etcd gave). A leader cut off from etcd cannot learn that it lost, but it
knows when it *may* have lost: `MARGIN` before that deadline it is told to
stop, while etcd still holds its key, so two controllers never serve at once.
A key that is read back as someone else's (or gone) fences as well.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import time
from collections.abc import Callable

from ..store.base import StoreUnavailable
from ..store.coordination import Election, Lease
from ..store.etcd_client import Etcd, parse

DEFAULT_TTL = 5  # s; etcd rounds a TTL below its minimum (~2 s) up
MARGIN = 0.5  # s before the lease's earliest expiry at which a cut-off leader stops
CHECK_S = 0.1  # how often the guard looks at the clock


def candidate_name() -> str:
    """This controller's name in the election: machine and pid (unique while it runs)."""
    return f"{socket.gethostname()}:{os.getpid()}"


class Leadership:
    def __init__(self, location: str, candidate: str, ttl: int = DEFAULT_TTL) -> None:
        self.election = Election(parse(location), candidate, ttl)
        self.candidate, self.ttl = candidate, ttl

    @property
    def lease(self) -> Lease | None:
        return self.election.lease

    def acquire(self, stop: threading.Event | None = None) -> bool:
        """Campaign until elected (True) or `stop` is set (False). etcd away for a while is
        waited out: a standby is there to outlast trouble."""
        while stop is None or not stop.is_set():
            try:
                if self.election.campaign(timeout=1.0):
                    return True
            except StoreUnavailable:
                time.sleep(1.0)
        return False

    def leader(self) -> str | None:
        return self.election.leader()

    def guard(self, on_lost: Callable[[str], None]) -> threading.Thread:
        """Start a thread that calls `on_lost(why)` once when leadership may be lost."""
        thread = threading.Thread(target=self._watch, args=(on_lost,), name="leadership",
                                  daemon=True)
        thread.start()
        return thread

    def _watch(self, on_lost: Callable[[str], None]) -> None:
        lease = self.lease
        if lease is None:
            on_lost("not elected")
            return
        # Its own HTTP session (this is another thread), with a short timeout: a read that
        # hangs must not hold the clock check up past the margin.
        etcd = Etcd(self.election.address, timeout=MARGIN / 2)
        next_read = time.monotonic() + self.ttl / 3
        while True:
            time.sleep(CHECK_S)
            now = time.monotonic()
            if lease.expired.is_set():
                on_lost("etcd expired the controller's lease")
                return
            if now >= lease.deadline - MARGIN:
                on_lost(f"etcd did not renew the controller's lease for "
                        f"{now - lease.deadline + self.ttl:.1f} s (TTL {self.ttl} s)")
                return
            if now >= next_read:
                next_read = now + self.ttl / 3
                try:
                    kv = etcd.get(self.election.key)
                except StoreUnavailable:
                    continue  # the deadline decides
                if kv is None or kv.value != self.candidate or kv.lease != lease.id:
                    on_lost(f"the leader key is {kv.value if kv else 'gone'}, not this "
                            "controller's")
                    return

    def resign(self) -> None:
        """Give the key up at once (its lease revoked); etcd away: it goes within the TTL."""
        with contextlib.suppress(StoreUnavailable):
            self.election.resign()
