"""copy_file / copy_tree: provisioning copies between lab hosts over NFC (PATH-2, EX-4).

The caller plays the source host's agent: it reads the source file itself
(read-only) and pushes it to the destination's NFC server over the
connections traffic.sockets.connect opens for resolve(PROVISIONING, src, dst).
Only data ranges cross the wire (SEEK_DATA/SEEK_HOLE); the destination file
is `<name>.part`, sized first (holes), verified block by block (CRC-32
per 1 MiB, files.BlockHash) and renamed atomically. A broken connection is resumed: the
destination's digests of the .part say which blocks to send again.

SEC-4: each attempt (the first, every resume, the cleanup of an abort) asks the
lab's issuer for one "nfc" ticket with as many uses as it opens connections and
presents it on each before the NFC HELLO; a resume never reuses an old ticket.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from ..errors import DataplaneError
from ..model import Datacenter, Service
from ..profiling import profiled
from ..resolve import Flow, resolve
from ..traffic.place import LabRef
from ..traffic.sockets import close_all, connect
from .client import NfcClient
from .files import BLOCK, Datastores, block_digests, confine, data_ranges
from .gate import ticketed
from .plan import BlockJob, TokenBucket, differing, jobs
from .protocol import PORT, Code, NfcError
from .report import CopyReport, FlowUsed

Progress = Callable[[int, int], None]  # (bytes of data done, bytes of data in all)
MAX_ATTEMPTS = 5
STREAMS_PER_PAIR = 1  # connections per adapter pair (blocks striped over all of them; the
# server serves each on a thread of its own). More than one did not help on the 2-core
# bench VM, where both cores are already busy with one stream per pair (docs/perf.md)
VERIFY_ROUNDS = 3
_BROKEN = (ConnectionError, TimeoutError, DataplaneError, BrokenPipeError)


@dataclass
class _Source:
    """The source file; its block digests are computed by a thread alongside the sending.

    zlib.crc32 and pread release the GIL, so the digests cost no time on the critical
    path: the first byte goes out at once, and `digests` (needed only to compare
    with the destination's CHECKSUM) waits for the thread.
    """

    fd: int
    size: int
    ranges: list[tuple[int, int]]
    block: int
    _digests: list[bytes] = field(default_factory=list)
    _error: list[BaseException] = field(default_factory=list)
    _thread: threading.Thread | None = None

    def start(self) -> _Source:
        def run() -> None:
            try:
                self._digests = block_digests(self.fd, self.size, self.block, self.ranges)
            except BaseException as err:  # raised where the digests are wanted
                self._error.append(err)

        self._thread = threading.Thread(target=run, daemon=True, name="nfc-source-digests")
        self._thread.start()
        return self

    def join(self) -> None:
        if self._thread is not None:
            self._thread.join()

    @property
    def digests(self) -> list[bytes]:
        self.join()
        if self._error:
            raise self._error[0]
        return self._digests

    @property
    def data(self) -> int:
        return sum(length for _, length in self.ranges)


@dataclass
class _State:
    """What survives a broken connection: the counters of the report."""

    sent: set[int] = field(default_factory=set)
    resent: int = 0
    done: int = 0
    wire: int = 0
    per_flow: dict[int, int] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)


def copy_file(dc: Datacenter, lab: LabRef, src_host: str, src_datastore: str, src_path: str,
              dst_host: str, dst_datastore: str, dst_path: str, *,
              progress: Progress | None = None, bandwidth_limit: float | None = None,
              resume: bool = True, stores: Datastores | None = None, port: int = PORT,
              block: int = BLOCK, timeout: float = 10.0,
              max_attempts: int = MAX_ATTEMPTS,
              streams_per_pair: int = STREAMS_PER_PAIR) -> CopyReport:
    """Copy one file between two hosts' datastores; the report says where the bytes went.

    NoPath (resolve) before any data moves; the final name appears only once every
    block is verified; on failure the .part is removed unless a later resume may use it.
    """
    flows = resolve(dc, Service.PROVISIONING, src_host, dst_host)  # NoPath: nothing moved
    stores = stores or Datastores.default()
    root = stores.root(_name(lab), src_host, src_datastore)
    fd = os.open(confine(root, src_path), os.O_RDONLY | os.O_CLOEXEC)
    start = time.monotonic()
    src: _Source | None = None
    try:
        size = os.fstat(fd).st_size
        ranges = data_ranges(fd, size)
        src = _Source(fd, size, ranges, block).start()
        bucket = TokenBucket(bandwidth_limit) if bandwidth_limit else None
        state = _State()
        part = f"{dst_path}.part"
        attempt, resumed, used = 0, False, flows
        while True:
            attempt += 1
            try:
                used, rounds = _attempt(dc, lab, src_host, dst_host, dst_datastore, dst_path,
                                        part, src, state, bucket, progress, port, block,
                                        timeout, resume=resume or attempt > 1,
                                        streams=max(1, streams_per_pair))
                break
            except _BROKEN as err:
                if not resume or attempt >= max_attempts:
                    _discard(dc, lab, src_host, dst_host, dst_datastore, part, port, timeout)
                    raise DataplaneError(f"NFC copy to {dst_host}:{dst_datastore}/{dst_path} "
                                         f"failed after {attempt} attempt(s): {err}") from err
                resumed = True
                time.sleep(min(0.2 * attempt, 1.0))
            except BaseException:
                _discard(dc, lab, src_host, dst_host, dst_datastore, part, port, timeout)
                raise
        seconds = time.monotonic() - start
        src.join()
        return CopyReport(
            source=f"{src_host}:[{src_datastore}] {src_path}",
            target=f"{dst_host}:[{dst_datastore}] {dst_path}",
            flows=[FlowUsed.of(f, state.per_flow.get(i, 0)) for i, f in enumerate(used)],
            logical_size=size, data_bytes=src.data, bytes_on_wire=state.wire,
            seconds=seconds, resumed=resumed, attempts=attempt,
            blocks_sent=len(state.sent), blocks_resent=state.resent, verify_rounds=rounds)
    finally:
        if src is not None:
            src.join()  # the digest thread reads fd: it ends before the close
        os.close(fd)


def _name(lab: LabRef) -> str:
    return lab if isinstance(lab, str) else lab.name


def _attempt(dc: Datacenter, lab: LabRef, src_host: str, dst_host: str, ds: str, final: str,
             part: str, src: _Source, state: _State, bucket: TokenBucket | None,
             progress: Progress | None, port: int, block: int, timeout: float, *,
             resume: bool, streams: int = 1) -> tuple[list[Flow], int]:
    conns = connect(dc, lab, Service.PROVISIONING, src_host, dst_host, port, timeout)
    pairs = len(conns)
    try:  # more streams over the same pairs: connection j carries pair j % pairs
        for _ in range(streams - 1):
            conns += connect(dc, lab, Service.PROVISIONING, src_host, dst_host, port, timeout)
    except BaseException:
        close_all(conns)
        raise
    ticketed(conns, _name(lab), "nfc", src_host, dst_host)  # SEC-4: this attempt's own
    clients = [NfcClient(c.sock, timeout) for c in conns]
    base = [c.wire for c in clients]
    try:
        for c in clients:
            c.hello(src_host)
        main = clients[0]
        existing = main.stat(ds, part) if resume else None
        if existing is None:
            # A fresh .part: without resume it must not outlive this connection.
            handle, _ = main.open(ds, part, "create", src.size, temporary=not resume)
            todo = jobs(src.size, src.ranges, block=block)
        else:
            handle, _ = main.open(ds, part, "create", src.size)  # keeps what is there
            main.setsize(handle, src.size)
            bad = differing(src.digests, main.checksum(handle, block))
            todo = jobs(src.size, src.ranges, bad, rewrite=True, block=block)
            _count_done(state, src, todo, progress)
        handles = [handle] + [c.open(ds, part, "write")[0] for c in clients[1:]]
        _send(clients, handles, src, todo, state, bucket, progress)
        rounds = 1
        while bad := differing(src.digests, main.checksum(handle, block)):
            if rounds >= VERIFY_ROUNDS:
                raise NfcError(Code.IO, f"{len(bad)} blocks still differ after {rounds} "
                               "verify rounds (is the source changing?)")
            rounds += 1
            _send(clients, handles, src, jobs(src.size, src.ranges, bad, rewrite=True,
                                              block=block), state, bucket, None)
        for c, h in zip(clients[1:], handles[1:], strict=True):
            c.close_handle(h)
        main.rename(ds, part, final)
        main.close_handle(handle)
        return [c.flow for c in conns[:pairs]], rounds
    finally:
        with state.lock:
            for i, c in enumerate(clients):
                state.wire += c.wire - base[i]
                state.per_flow[i % pairs] = state.per_flow.get(i % pairs, 0) + c.wire - base[i]
        for c in clients:
            c.close()


def _count_done(state: _State, src: _Source, todo: list[BlockJob],
                progress: Progress | None) -> None:
    """On resume, the blocks that need no resend count as done for progress."""
    again = sum(j.data_bytes for j in todo)
    state.done = src.data - again
    if progress is not None:
        progress(state.done, src.data)


def _send(clients: list[NfcClient], handles: list[int], src: _Source, todo: list[BlockJob],
          state: _State, bucket: TokenBucket | None, progress: Progress | None) -> None:
    """Stripe the blocks over every connection (multi-pair provisioning), one thread each."""
    queue = list(reversed(todo))
    failed: list[BaseException] = []
    stop = threading.Event()

    def worker(client: NfcClient, handle: int) -> None:
        with profiled("nfc-send"):
            _worker(client, handle)

    def _worker(client: NfcClient, handle: int) -> None:
        try:
            while not stop.is_set():
                with state.lock:
                    if not queue:
                        break
                    job = queue.pop()
                    if job.index in state.sent:
                        state.resent += 1
                    state.sent.add(job.index)
                if job.rewrite:  # the .part may hold other bytes here: clear, then write data
                    client.zero_range(handle, job.start, job.end - job.start)
                for off, length in job.extents:
                    client.send_range(handle, src.fd, off, length, bucket)
                with state.lock:
                    state.done += job.data_bytes
                    done = state.done
                if progress is not None:
                    progress(done, src.data)
            client.sync(handle)
        except BaseException as err:  # handed to the caller below
            stop.set()
            failed.append(err)

    threads = [threading.Thread(target=worker, args=(c, h), daemon=True)
               for c, h in zip(clients[1:], handles[1:], strict=True)]
    for t in threads:
        t.start()
    worker(clients[0], handles[0])  # the first stream runs in the caller's thread
    for t in threads:
        t.join()
    if failed:
        raise failed[0]


def _discard(dc: Datacenter, lab: LabRef, src_host: str, dst_host: str, ds: str, part: str,
             port: int, timeout: float) -> None:
    """Best effort: remove the .part so an abort leaves nothing half written."""
    with contextlib.suppress(Exception):
        conns = connect(dc, lab, Service.PROVISIONING, src_host, dst_host, port, timeout)
        ticketed(conns, _name(lab), "nfc", src_host, dst_host)
        client = NfcClient(conns[0].sock, timeout)
        try:
            client.hello(src_host)
            if client.stat(ds, part) is not None:
                client.delete(ds, part)
        finally:
            for c in conns:
                c.close()


def copy_tree(dc: Datacenter, lab: LabRef, src_host: str, src_datastore: str, src_dir: str,
              dst_host: str, dst_datastore: str, dst_dir: str, **options: object
              ) -> list[CopyReport]:
    """Every regular file under a VM directory (config, disks), one copy_file each."""
    stores = options.get("stores")
    stores = stores if isinstance(stores, Datastores) else Datastores.default()
    top = confine(stores.root(_name(lab), src_host, src_datastore), src_dir)
    reports = []
    for folder, _dirs, names in sorted(os.walk(top)):
        for name in sorted(names):
            rel = os.path.relpath(os.path.join(folder, name), top)
            if rel.endswith(".part"):
                continue  # an unfinished copy into this directory is not part of the VM
            reports.append(copy_file(dc, lab, src_host, src_datastore, f"{src_dir}/{rel}",
                                     dst_host, dst_datastore, f"{dst_dir}/{rel}",
                                     **options))  # type: ignore[arg-type]
    return reports
