"""NFS 4.1 mounts: one client ID and one session, trunked over every server address.

Set-up (RFC 8881 18.35, 18.36, 18.51): EXCHANGE_ID, CREATE_SESSION and
RECLAIM_COMPLETE over the first address that answers; then each further
address gets a connection of its own, an EXCHANGE_ID on it to learn whether
it is the same server (same server owner: session trunking is allowed), and
BIND_CONN_TO_SESSION to join it to the session's fore channel. Every compound
starts with SEQUENCE on a slot of the session's slot table.

I/O is spread over the live connections (a large read or write is cut into
compounds sent round robin, a few in flight on each). A connection that fails
or stays silent past the failover timeout is dropped and what was in flight on
it is sent again on the others with the same slot and sequence ID (a retry, as
the session's reply cache expects); the dropped address is connected again in
the background. When the server has lost the session (it restarted), a new
client ID and session are made and the open files are opened again by handle.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from . import v4proto as v4
from .api import MAX_READ_FILE, NfsFile, NfsMount, StatFs, taken
from .connect import Bind, connect
from .errors import NfsError, NfsNotFound, NfsProtocolError, NfsStatusError
from .paths import components, split
from .rpc import AuthSys, Connection
from .v4proto import Op

T = TypeVar("T")
NFS_PORT = 2049
MAX_IO = 1 << 20
DEPTH = 8  # compounds in flight per connection (the server gives 16 slots)
SLOTS = 16  # slots we ask for; the server may give fewer
PENDING_LIMIT = 64 << 20
FAILOVER = 2.0  # s of silence after which a connection with another beside it is dropped
RECONNECT_EVERY = 2.0  # s between attempts to bring a dropped address back
DELAY_RETRIES = 20


@dataclass(eq=False)
class Path41:
    """One connection of the session: the server address, where it comes from, its RPC."""

    server: str
    bind: Bind
    rpc: Connection | None = None
    why: str | None = None  # why it is down, while it is
    since: float = 0.0  # when it went down (or was last tried)
    trunked: str = ""  # what EXCHANGE_ID on it said: "session" or "client ID only"
    sent: int = 0  # compounds carried

    @property
    def up(self) -> bool:
        return self.rpc is not None and self.rpc.broken is None


@dataclass
class _Call:
    index: int
    slot: int | None = None  # kept for a retry after a dropped connection
    delays: int = 0


@dataclass
class _State:
    clientid: int = 0
    sessionid: bytes = b""
    slots: list[int] = field(default_factory=list)  # next sequence ID of each slot
    generation: int = 0  # bumped by every new session: files opened before reopen


class V41Mount(NfsMount):
    version = "4.1"

    def __init__(self, servers: list[str], export: str, binds: list[Bind], *, timeout: float,
                 sync: bool, failover: float = FAILOVER, auth: AuthSys | None = None) -> None:
        self.server, self.export = servers[0], export
        self.servers = servers
        self.timeout, self.sync, self.failover = timeout, sync, failover
        self.auth = auth or AuthSys()
        self.lock = threading.RLock()
        self.paths = [Path41(s, b) for s, b in zip(servers, binds, strict=True)]
        self.owner = b"vmknet-" + os.urandom(8).hex().encode()
        self.verifier = os.urandom(8)
        self.state = _State()
        self.lease = 60
        self.root = b""
        self.maxio = MAX_IO
        self.files: set[V41File] = set()
        self._owners = itertools.count(1)
        self._rr = itertools.count()
        self._last = time.monotonic()
        self._closed = threading.Event()
        self._establish()
        self._keeper = threading.Thread(target=self._keep, name="vmknet-nfs41-lease",
                                         daemon=True)
        self._keeper.start()

    # ------------------------------------------------------------- session

    def _open_path(self, path: Path41, timeout: float) -> Connection:
        sock = connect(path.server, NFS_PORT, path.bind, timeout)
        return Connection(sock, auth=self.auth, timeout=self.timeout,
                          max_reply=self.maxio + 65536, peer=f"NFS server {path.server}")

    def _bare(self, rpc: Connection, ops: list[Op], what: str) -> list[Any]:
        """A compound without SEQUENCE (set-up operations that must stand alone)."""
        u = rpc.call(v4.NFS4_PROG, v4.NFS4_VERS, v4.COMPOUND, v4.compound_args(ops))
        return v4.compound_results(u, ops, what)

    def _establish(self) -> None:
        """A new client ID and session over the first address that answers; the others
        joined to it. Raises when no address answers."""
        for path in self.paths:
            if path.rpc is not None:
                path.rpc.close()
            path.rpc = None
        errors: list[str] = []
        first: Path41 | None = None
        for path in self.paths:
            try:
                path.rpc = self._open_path(path, self.timeout)
                exchanged = self._bare(path.rpc, [v4.exchange_id(self.verifier, self.owner)],
                                       f"EXCHANGE_ID {path.server}")[0]
            except NfsError as err:
                path.why, path.since = str(err), time.monotonic()
                if path.rpc is not None:
                    path.rpc.close()
                path.rpc = None
                errors.append(str(err))
                continue
            first = path
            break
        if first is None or first.rpc is None:
            raise NfsError(f"NFS 4.1 {','.join(self.servers)}:{self.export}: no server address "
                           f"answers: {'; '.join(errors)}")
        self._owner_id = (exchanged.owner_major, exchanged.owner_minor, exchanged.scope)
        session = self._bare(first.rpc, [v4.create_session(exchanged.clientid,
                                                           exchanged.sequenceid, MAX_IO,
                                                           SLOTS)],
                             f"CREATE_SESSION {first.server}")[0]
        self.maxio = max(4096, min(MAX_IO, session.fore.maxrequest - 8192,
                                   session.fore.maxresponse - 8192))
        first.rpc.max_reply = self.maxio + 65536
        first.trunked, first.why = "session", None
        self.state = _State(exchanged.clientid, session.sessionid,
                            [1] * max(1, min(SLOTS, session.fore.maxrequests)),
                            self.state.generation + 1)
        try:
            self.compound([v4.reclaim_complete()], "RECLAIM_COMPLETE")
        except NfsStatusError as err:
            # The same client owner again after a server restart: ganesha gives the same
            # client ID, whose reclaim it already counts as complete.
            if err.status != v4.COMPLETE_ALREADY:
                raise
        for path in self.paths:
            if path is not first:
                self._join(path, self.timeout)
        root = [v4.putrootfh()] + [v4.lookup(n) for n in components(self.export)]
        got = self.compound([*root, v4.getfh(), v4.getattr_([v4.A_LEASE_TIME])],
                            f"LOOKUP {self.export}")
        self.root = got[-2]
        self.lease = max(10, got[-1].get(v4.A_LEASE_TIME, 60))

    def _join(self, path: Path41, timeout: float, rpc: Connection | None = None) -> None:
        """Connect `path` (unless `rpc` is its new connection already) and bind it to the
        session, if the server there is the same one."""
        if rpc is None:
            try:
                rpc = self._open_path(path, timeout)
            except NfsError as err:
                path.why, path.since = str(err), time.monotonic()
                return
        try:
            exchanged = self._bare(rpc, [v4.exchange_id(self.verifier, self.owner)],
                                   f"EXCHANGE_ID {path.server}")[0]
            # RFC 8881 2.10.5 wants the client ID equal too; ganesha 4.3 keys its client
            # records by server address as well, so each address gives another client ID
            # while server owner and scope match, and BIND_CONN_TO_SESSION is accepted.
            if (exchanged.owner_major, exchanged.scope) != (self._owner_id[0],
                                                            self._owner_id[2]):
                raise NfsError(f"{path.server} is another server (server owner or scope "
                               "differs): not trunked")
            if exchanged.owner_minor != self._owner_id[1]:
                raise NfsError(f"{path.server} allows client ID trunking only (server owner "
                               "minor ID differs): not trunked")
            self._bare(rpc, [v4.bind_conn(self.state.sessionid)],
                       f"BIND_CONN_TO_SESSION {path.server}")
        except NfsError as err:
            rpc.close()
            path.why, path.since = str(err), time.monotonic()
            return
        rpc.max_reply = self.maxio + 65536
        path.rpc, path.why = rpc, None
        path.trunked = "session" if exchanged.clientid == self.state.clientid else \
            "session (bound, another client ID)"

    def _keep(self) -> None:
        """Renew the lease when idle, and bring dropped addresses back (in the background,
        so I/O on the live connections does not wait for a dead address's connect)."""
        while not self._closed.wait(0.5):
            now = time.monotonic()
            down = [p for p in self.paths if not p.up and now - p.since >= RECONNECT_EVERY]
            for path in down:
                path.since = now
                if not any(p.up for p in self.paths):
                    break  # nothing to join to: the next call re-establishes
                try:
                    # Outside the lock: a dead address's connect must not pause the I/O.
                    rpc = self._open_path(path, min(1.0, self.timeout))
                except NfsError as err:
                    path.why = str(err)
                    continue
                with self.lock:
                    if self._closed.is_set() or path.up or not any(p.up for p in self.paths):
                        rpc.close()
                        continue
                    self._join(path, self.timeout, rpc)
            if now - self._last > self.lease / 3:
                with contextlib.suppress(NfsError), self.lock:
                    if not self._closed.is_set() and any(p.up for p in self.paths):
                        self.compound([], "SEQUENCE (lease renewal)")

    def connections(self) -> list[Path41]:
        return list(self.paths)

    # ------------------------------------------------------------- compounds

    def compound(self, ops: list[Op], what: str) -> list[Any]:
        return self.many([ops], what)[0]

    def many(self, calls: list[list[Op]], what: str) -> list[list[Any]]:
        """Each compound's results, spread over the live connections, `DEPTH` in flight on
        each; a dropped connection's compounds are retried on the others."""
        with self.lock:
            self._last = time.monotonic()
            if not any(p.up for p in self.paths):
                self._establish()
            st = self.state
            free = deque(range(len(st.slots)))
            todo: deque[_Call] = deque(_Call(i) for i in range(len(calls)))
            flight: deque[tuple[_Call, Path41, int, int]] = deque()
            out: list[list[Any] | None] = [None] * len(calls)
            failure: NfsError | None = None
            while todo or flight:
                live = [p for p in self.paths if p.up]
                if not live and not flight:
                    raise NfsError(f"NFS 4.1 {','.join(self.servers)}:{self.export}: every "
                                   f"connection is down: "
                                   f"{'; '.join(p.why or '' for p in self.paths)}")
                while todo and live and len(flight) < DEPTH * len(live) and \
                        (todo[0].slot is not None or free):
                    call = todo.popleft()
                    slot = call.slot if call.slot is not None else free.popleft()
                    call.slot = slot
                    path = live[next(self._rr) % len(live)]
                    args = v4.compound_args([v4.sequence(st.sessionid, st.slots[slot], slot,
                                                         len(st.slots) - 1),
                                             *calls[call.index]], what)
                    try:
                        assert path.rpc is not None
                        xid = path.rpc.send(v4.NFS4_PROG, v4.NFS4_VERS, v4.COMPOUND, args)
                    except NfsError as err:
                        self._drop(path, err)
                        todo.appendleft(call)
                        live = [p for p in self.paths if p.up]
                        continue
                    path.sent += 1
                    flight.append((call, path, xid, slot))
                if not flight:
                    continue
                call, path, xid, slot = flight.popleft()
                rpc = path.rpc
                try:
                    if rpc is None:
                        raise NfsError(path.why or "dropped")
                    others = sum(1 for p in self.paths if p.up and p is not path)
                    rpc.timeout = self.failover if others else self.timeout
                    u = rpc.reply(xid)
                except NfsError as err:
                    if rpc is not None and rpc.broken is None:
                        # A reply that does not parse at RPC level: the slot was used.
                        st.slots[slot] += 1
                        free.append(slot)
                        failure = failure or err
                        continue
                    self._drop(path, err)
                    todo.appendleft(call)  # the same slot and sequence ID: a retry
                    continue
                ops = [v4.sequence(st.sessionid, 0, slot, 0), *calls[call.index]]
                try:
                    results = v4.compound_results(u, ops, what)
                except NfsStatusError as err:
                    if err.status in v4.LOST_SESSION:
                        raise
                    st.slots[slot] += 1
                    if err.status in (v4.RETRY_UNCACHED, v4.DELAY) and \
                            call.delays < DELAY_RETRIES:
                        call.delays += 1
                        if err.status == v4.DELAY:
                            time.sleep(0.05 * call.delays)
                        todo.append(call)  # sent again as a new request on the next ID
                        continue
                    free.append(slot)
                    call.slot = None
                    failure = failure or err
                    continue
                except NfsProtocolError as err:
                    st.slots[slot] += 1
                    free.append(slot)
                    failure = failure or err
                    continue
                st.slots[slot] += 1
                free.append(slot)
                call.slot = None
                out[call.index] = results[1:]
            if failure is not None:
                raise failure
            return [r if r is not None else [] for r in out]

    def _drop(self, path: Path41, err: NfsError) -> None:
        if path.rpc is not None:
            path.rpc.close()
        path.rpc, path.why, path.since = None, str(err), time.monotonic()

    def session(self, fn: Callable[[], T]) -> T:
        """`fn()`, once more when the server lost our session (it restarted: a new one is
        made) or an open's state (files are opened again: `fn` checks the generation)."""
        with self.lock:
            generation = self.state.generation
            try:
                return fn()
            except NfsStatusError as err:
                if err.status in v4.LOST_SESSION:
                    self._establish()
                elif err.status in v4.LOST_STATE:
                    if generation == self.state.generation:
                        self.state.generation += 1  # the opens are stale: reopen them
                else:
                    raise
                return fn()

    # ------------------------------------------------------------- the API

    def _at(self, parts: list[str]) -> list[Op]:
        return [v4.putfh(self.root), *(v4.lookup(n) for n in parts)]

    def open_file(self, path: str, create: bool = False, size: int | None = None) -> NfsFile:
        if size is not None and size < 0:
            raise NfsError(f"a negative size for {path}", code="InvalidArgument")
        parent, name = split(path)
        owner = b"%s-%d" % (self.owner, next(self._owners))

        def go() -> V41File:
            got = self.compound([*self._at(parent), v4.open_(self.state.clientid, owner, name,
                                                             create, size),
                                 v4.getfh(), v4.getattr_([v4.A_TYPE, v4.A_SIZE])],
                                f"OPEN {path}")
            opened, fh, attrs = got[-3], got[-2], got[-1]
            f = V41File(self, fh, path, owner, opened, attrs.get(v4.A_SIZE, 0))
            if attrs.get(v4.A_TYPE) != v4.NF4REG:
                f.close()
                raise v4.status_error(f"open {path}", 21)
            self.files.add(f)
            if size is not None and f.size != size:
                f.truncate(size)
            return f
        return self.session(go)

    def listdir(self, path: str = "/") -> list[str]:
        parts = components(path)

        def go() -> list[str]:
            cookie, verifier, names = 0, b"\0" * 8, []
            while True:
                listing = self.compound([*self._at(parts), v4.readdir(cookie, verifier)],
                                        f"READDIR {path}")[-1]
                names += [n for n, _ in listing.names]
                if listing.eof or not listing.names:
                    return sorted(n for n in names if n not in (".", ".."))
                cookie, verifier = listing.names[-1][1], listing.verifier
        return self.session(go)

    def mkdir(self, path: str, exist_ok: bool = False) -> None:
        parent, name = split(path)
        try:
            self.session(lambda: self.compound([*self._at(parent), v4.mkdir(name)],
                                               f"MKDIR {path}"))
        except NfsStatusError as err:
            if not (exist_ok and err.status == 17):
                raise

    def remove(self, path: str) -> None:
        parent, name = split(path)
        self.session(lambda: self.compound([*self._at(parent), v4.remove(name)],
                                           f"REMOVE {path}"))

    def exists(self, path: str) -> bool:
        parts = components(path)
        try:
            self.session(lambda: self.compound(self._at(parts), f"LOOKUP {path}"))
        except NfsNotFound:
            return False
        return True

    def write_file(self, path: str, data: bytes) -> None:
        with self.lock:
            f = self.open_file(path, create=True)
            assert isinstance(f, V41File)
            try:
                f.write_stable(0, bytes(data))
                if f.size > len(data):
                    f.truncate(len(data))
            finally:
                f.close()

    def read_file(self, path: str, limit: int = MAX_READ_FILE) -> bytes:
        with self.lock:
            f = self.open_file(path)
            try:
                if f.size > limit:
                    raise NfsError(f"{path} holds {f.size} bytes, more than the {limit} "
                                   "read_file reads: open_file and read it in parts",
                                   code="InvalidArgument")
                return f.read(0, f.size)
            finally:
                f.close()

    def statfs(self) -> StatFs:
        bits = [v4.A_FILES_FREE, v4.A_FILES_TOTAL, v4.A_SPACE_AVAIL, v4.A_SPACE_FREE,
                v4.A_SPACE_TOTAL]
        a = self.session(lambda: self.compound([v4.putfh(self.root), v4.getattr_(bits)],
                                               f"GETATTR {self.export}"))[-1]
        return StatFs(a.get(v4.A_SPACE_TOTAL, 0), a.get(v4.A_SPACE_FREE, 0),
                      a.get(v4.A_SPACE_AVAIL, 0), a.get(v4.A_FILES_TOTAL, 0),
                      a.get(v4.A_FILES_FREE, 0))

    def ping(self) -> float:
        started = time.monotonic()
        self.session(lambda: self.compound([], "SEQUENCE"))
        return time.monotonic() - started

    def close(self) -> None:
        self._closed.set()
        with self.lock:
            for f in list(self.files):
                with contextlib.suppress(NfsError):
                    f.close()
            if any(p.up for p in self.paths):
                with contextlib.suppress(NfsError):
                    self.compound([], "SEQUENCE")  # nothing: just no state left behind
                    live = next(p for p in self.paths if p.up)
                    assert live.rpc is not None
                    self._bare(live.rpc, [v4.destroy_session(self.state.sessionid)],
                               "DESTROY_SESSION")
                    self._bare(live.rpc, [v4.destroy_clientid(self.state.clientid)],
                               "DESTROY_CLIENTID")
            for path in self.paths:
                if path.rpc is not None:
                    path.rpc.close()
                    path.rpc = None
        if self._keeper.is_alive() and self._keeper is not threading.current_thread():
            self._keeper.join(timeout=2.0)


class V41File(NfsFile):
    def __init__(self, mount: V41Mount, fh: bytes, path: str, owner: bytes,
                 opened: v4.Opened, size: int) -> None:
        self.mount, self.fh, self.path, self.owner = mount, fh, path, owner
        self.sid, self.delegation = opened.stateid, opened.delegation
        self.generation = mount.state.generation
        self._size = size
        self._pending: list[tuple[int, bytes]] = []
        self._pending_bytes = 0
        self._verifier: bytes | None = None
        self._closed = False

    @property
    def size(self) -> int:
        return self._size

    def _check(self) -> None:
        if self._closed:
            raise NfsError(f"{self.path} is closed", code="InvalidArgument")
        if self.generation != self.mount.state.generation:
            self._reopen()

    def _reopen(self) -> None:
        """Open again by handle on the new session (the old stateid died with the old one)."""
        m = self.mount
        got = m.compound([v4.putfh(self.fh), v4.open_(m.state.clientid, self.owner, None,
                                                      False, None)], f"OPEN {self.path}")
        self.sid, self.delegation = got[-1].stateid, got[-1].delegation
        self.generation = m.state.generation

    def _do(self, fn: Callable[[], T]) -> T:
        def go() -> T:
            self._check()
            return fn()
        return self.mount.session(go)

    def read(self, offset: int, length: int) -> bytes:
        if offset < 0 or length < 0:
            raise NfsError("a negative offset or length", code="InvalidArgument")
        return self._do(lambda: self._read(offset, length))

    def _read(self, offset: int, length: int) -> bytes:
        out = bytearray()
        step = self.mount.maxio
        while length > 0:
            wants = [(offset + i, min(step, length - i)) for i in range(0, length, step)]
            results = self.mount.many([[v4.putfh(self.fh), v4.read(self.sid, o, n)]
                                       for o, n in wants], f"READ {self.path}")
            got, eof = 0, False
            for (_, n), res in zip(wants, results, strict=True):
                at_end, data = res[-1]
                out += data
                got += len(data)
                eof = eof or at_end
                if len(data) < n:
                    break
            offset, length = offset + got, length - got
            if eof or got == 0:
                break
        return bytes(out)

    def _write(self, offset: int, data: bytes, stable: int) -> bytes:
        verifier = b""
        step = self.mount.maxio
        while data:
            view = memoryview(data)
            parts = [(offset + i, bytes(view[i:i + step])) for i in range(0, len(data), step)]
            results = self.mount.many([[v4.putfh(self.fh), v4.write(self.sid, o, stable, c)]
                                       for o, c in parts], f"WRITE {self.path}")
            done, verifier = taken(self.path, parts, (res[-1] for res in results))
            offset, data = offset + done, data[done:]
        return verifier

    def write_stable(self, offset: int, data: bytes) -> None:
        self._do(lambda: self._write(offset, data, v4.FILE_SYNC4))
        self._size = max(self._size, offset + len(data))

    def write(self, offset: int, data: bytes) -> None:
        if offset < 0:
            raise NfsError("a negative offset", code="InvalidArgument")
        data = bytes(data)
        if not data:
            return
        if self.mount.sync:
            self.write_stable(offset, data)
            return
        with self.mount.lock:
            generation = self.mount.state.generation
            verifier = self._do(lambda: self._write(offset, data, v4.UNSTABLE4))
            if generation != self.mount.state.generation or \
                    (self._verifier is not None and verifier != self._verifier):
                self._resend()  # the server restarted: the earlier unstable writes may be lost
            self._verifier = verifier
            self._pending.append((offset, data))
            self._pending_bytes += len(data)
            self._size = max(self._size, offset + len(data))
            if self._pending_bytes > PENDING_LIMIT:
                self.flush()

    def _resend(self) -> None:
        pending, self._pending = self._pending, []

        def again() -> None:
            for offset, data in pending:
                self._write(offset, data, v4.FILE_SYNC4)
        self._do(again)
        self._pending, self._pending_bytes, self._verifier = [], 0, None

    def truncate(self, size: int) -> None:
        self._do(lambda: self.mount.compound([v4.putfh(self.fh),
                                              v4.setattr_size(self.sid, size)],
                                             f"SETATTR {self.path}"))
        self._size = size

    def flush(self) -> None:
        if self._closed:
            raise NfsError(f"{self.path} is closed", code="InvalidArgument")
        with self.mount.lock:
            if not self._pending:
                return
            generation = self.mount.state.generation
            verf = self._do(lambda: self.mount.compound([v4.putfh(self.fh), v4.commit()],
                                                        f"COMMIT {self.path}"))[-1]
            if verf != self._verifier or generation != self.mount.state.generation:
                self._resend()
            self._pending, self._pending_bytes, self._verifier = [], 0, None

    def close(self) -> None:
        if self._closed:
            return
        try:
            self.flush()
            ops = [v4.putfh(self.fh)]
            if self.delegation is not None:
                ops.append(v4.delegreturn(self.delegation))
            ops.append(v4.close(self.sid))
            if self.generation == self.mount.state.generation:
                self.mount.compound(ops, f"CLOSE {self.path}")
        finally:
            self._closed = True
            self.mount.files.discard(self)
