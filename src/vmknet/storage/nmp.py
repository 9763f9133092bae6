"""Native multipathing for real: one initiator session per path, the PSP choosing per I/O.

    with open_device(dc, lab, "esx01", "naa.6...") as dev:   # sessions over every path
        dev.write(lba=0, data=b"x" * 4096)                    # the PSP picks the path
        dev.read(lba=0, blocks=8)
        dev.failovers                                          # [(dead path, pause in s)]

A command that fails on a path (no answer within `io_timeout`, the
connection reset or closed) marks that path dead and is issued again on the
path the PSP chooses next, so the caller sees no error while one path lives
(STO-4). READ and WRITE of whole blocks are idempotent, so a command the dead
path may or may not have carried out is safe to repeat. A dead path is
logged into again in the background every `revive_every` seconds; once its
session is back the PSP may use it again (FIXED returns to it, MRU does not).
The time from the failed command's start to its completion on another path
is kept in `failovers`: the I/O pause a VM would see. Several threads may
issue at once (a VM's queue depth): each session carries one command at a
time, so with RR two threads keep two paths busy.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from types import TracebackType
from typing import TypeVar

from ..errors import NotFound
from ..model import Datacenter, NmpDevice
from . import libiscsi, scan
from .initiator import IscsiError, Session
from .paths import StoragePath, paths
from .psp import Selector

T = TypeVar("T")
IO_TIMEOUT = 1.0  # s without an answer before a path is declared dead (ESXi: 5 s NOP-Out)
REVIVE_EVERY = 1.0  # s between logins into a dead path
ALL_PATHS_DOWN_AFTER = 10.0  # s with no live path before the caller gets an error (APD)

Opener = Callable[[StoragePath], Session]


class AllPathsDown(IscsiError):
    """No path of the device has lived for ALL_PATHS_DOWN_AFTER seconds (ESXi's APD)."""


class MultipathDevice:
    """One device seen through several paths, each with its own session."""

    def __init__(self, device: str, device_paths: list[StoragePath], config: NmpDevice,
                 opener: Opener, io_timeout: float = IO_TIMEOUT,
                 revive_every: float = REVIVE_EVERY) -> None:
        if not device_paths:
            raise NotFound(f"Device {device} has no path: rescan the adapter", device=device)
        self.device, self.paths, self.config = device, device_paths, config
        self.opener, self.io_timeout, self.revive_every = opener, io_timeout, revive_every
        names = [p.runtime_name for p in device_paths]
        preferred = names.index(config.preferred) if config.preferred in names else 0
        self.selector = Selector(config.psp, len(device_paths), config.iops, preferred)
        self.sessions: list[Session | None] = [None] * len(device_paths)
        self.ios = [0] * len(device_paths)  # commands completed per path
        self.failovers: list[tuple[str, float]] = []
        self._lock = threading.Lock()
        self._busy = [threading.Lock() for _ in device_paths]
        self._stop = threading.Event()
        for i in range(len(device_paths)):
            self._login(i)
        self._reviver = threading.Thread(target=self._revive, name=f"nmp-{device}",
                                         daemon=True)
        self._reviver.start()

    # ------------------------------------------------------------- sessions

    def _login(self, i: int) -> bool:
        try:
            session = self.opener(self.paths[i])
        except (IscsiError, NotFound, OSError):
            return False
        session.sock.settimeout(self.io_timeout)
        with self._lock:
            if self._stop.is_set():
                session.sock.close()
                return False
            self.sessions[i] = session
        return True

    def _revive(self) -> None:
        while not self._stop.wait(self.revive_every):
            for i in range(len(self.paths)):
                if self.sessions[i] is None and not self._stop.is_set():
                    self._login(i)

    def _dead(self, i: int, session: Session) -> None:
        with self._lock:
            if self.sessions[i] is session:
                self.sessions[i] = None
        session.sock.close()  # no logout: the path does not answer

    def alive(self) -> list[bool]:
        with self._lock:
            return [s is not None for s in self.sessions]

    def close(self) -> None:
        self._stop.set()
        self._reviver.join(timeout=self.revive_every + libiscsi.LOGIN_TIMEOUT + 1)
        with self._lock:
            sessions, self.sessions = self.sessions, [None] * len(self.paths)
        for session in sessions:
            if session is not None:
                session.sock.settimeout(0.5)
                session.close()

    def __enter__(self) -> MultipathDevice:
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    # ------------------------------------------------------------------ I/O

    def working(self) -> list[str]:
        return [self.paths[i].runtime_name for i in self.selector.working(self.alive())]

    def _issue(self, command: Callable[[Session, StoragePath], T]) -> T:
        started = time.monotonic()
        failed: str | None = None
        no_path_since: float | None = None
        while True:
            with self._lock:  # the PSP's state is the device's: one choice at a time
                i = self.selector.choose([s is not None for s in self.sessions])
                session = None if i is None else self.sessions[i]
            if i is None or session is None:
                no_path_since = no_path_since or time.monotonic()
                if time.monotonic() - no_path_since > ALL_PATHS_DOWN_AFTER:
                    raise AllPathsDown(f"All paths down to {self.device} for "
                                       f"{ALL_PATHS_DOWN_AFTER:.0f} s", device=self.device)
                time.sleep(0.05)
                continue
            try:
                with self._busy[i]:  # a session carries one command at a time
                    if self.sessions[i] is not session:
                        continue  # declared dead (and perhaps revived) meanwhile
                    result = command(session, self.paths[i])
            except (IscsiError, OSError):
                failed = failed or self.paths[i].runtime_name
                self._dead(i, session)
                continue
            with self._lock:
                self.ios[i] += 1
                if failed is not None:
                    self.failovers.append((failed, time.monotonic() - started))
            return result

    def read(self, lba: int, blocks: int) -> bytes:
        return self._issue(lambda s, p: s.read(p.lun, lba, blocks, p.block))

    def write(self, lba: int, data: bytes) -> None:
        self._issue(lambda s, p: s.write(p.lun, lba, data, p.block))


def device_paths(lab: str, dc: Datacenter, host: str, device: str) -> list[StoragePath]:
    """The paths of the last rescan to `device`, in runtime-name order."""
    sw = dc.host(host).storage.iscsi
    found = [] if sw is None else paths(sw.name, scan.load(lab, host, sw.name))
    return [p for p in found if p.device == device]


def config(dc: Datacenter, host: str, device: str) -> NmpDevice:
    return dc.host(host).storage.nmp.get(device) or NmpDevice()


def open_device(dc: Datacenter, lab: str, host: str, device: str,
                io_timeout: float = IO_TIMEOUT) -> MultipathDevice:
    """Sessions over every path of `device` on `host`, with the host's PSP for it."""
    def opener(p: StoragePath) -> Session:
        return scan.path_session(dc, lab, host, p, timeout=io_timeout)

    return MultipathDevice(device, device_paths(lab, dc, host, device),
                           config(dc, host, device), opener, io_timeout)
