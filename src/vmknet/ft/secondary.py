"""The secondary's side of FT, run in an incoming VM process on the secondary host.

It admits one connection with the protection's "ft" ticket (vMotion's admission door,
SEC-4), then reads vMotion's frames: the pages of round N are staged, not applied, until
N's ROUND_END arrives; then they are written into guest memory at once and N is
acknowledged. So guest memory is always the primary's at the last acknowledged
checkpoint, never half of one: a primary that dies mid-checkpoint leaves the last
acknowledged state intact. The checkpoint's device state (a PAGES frame of no pages)
is applied with its pages. When the ticket carries a key (SEC-1), every payload is
opened with it (AES-GCM); one that fails its check counts as a lost link.

No frame for `timeout` seconds (a checkpoint is due every epoch) or a broken connection
means the primary or the link is gone: the secondary asks the arbiter (FT-2); won, it
goes live from the last acknowledged checkpoint; lost, it stands down. BYE (`ft off`):
it stands down without asking. Live in a lab with a controller, it re-protects the VM
(reprotect.py).
"""

from __future__ import annotations

import contextlib
import os
import socket
import time
from collections.abc import Callable
from typing import Any

import numpy as np
from cryptography.exceptions import InvalidTag

from ..errors import NotFound
from ..vm.guest import Guest
from ..vm.units import PAGE_SIZE
from ..vmotion import protocol
from ..vmotion.admission import Door
from ..vmotion.crypto import OVERHEAD, Opener
from . import arbiter, records
from .output import Output
from .primary import SYNC_ROUND

ACCEPT_TIMEOUT = 30.0
MAX_DEVICE = 64 << 10  # a device state is ~4 KiB: a bigger one is not ours
Staged = list[tuple[int, int, bytes | bytearray | None]]  # first page, count, data (None: zeros)


class Secondary:
    def __init__(self, guest: Guest, session: str, timeout: float, verify: bool,
                 output: dict[str, Any] | None = None) -> None:
        self.guest, self.session, self.timeout, self.verify = guest, session, timeout, verify
        self.output_config = output  # where the VM's records are served once live
        self.output_mark: int | None = None  # records of the last applied checkpoint
        self.output: Output | None = None
        self.state = "waiting"
        self.opener: Opener | None = None  # SEC-1: set from the ticket's key when sealed
        self.last_applied = 0
        self.applied_bytes = 0
        self.live_from: int | None = None
        self.live_writes: int | None = None
        self.live_digest: str | None = None
        self.failover_ms: float | None = None

    def stats(self) -> dict[str, Any]:
        return {"state": self.state, "last_applied": self.last_applied,
                "output_mark": self.output_mark,
                "output_produced": self.output.produced if self.output else None,
                "applied_bytes": self.applied_bytes, "encrypted": self.opener is not None,
                "live_from": self.live_from,
                "live_digest": self.live_digest, "live_writes": self.live_writes,
                "failover_ms": self.failover_ms}

    def run(self, listeners: list[socket.socket], ticket_id: str,
            on_live: Callable[[Guest], None]) -> bool:
        """Follow the primary until BYE (False) or until this copy goes live (True)."""
        g = self.guest
        door = Door(listeners, g.lab, g.host, ticket_id, "ft logging", kind="ft")
        try:
            sock, admitted = door.take(time.monotonic() + ACCEPT_TIMEOUT)
        finally:
            door.close()
        key = admitted.ticket.key  # SEC-1: the ticket carries a key when the link is sealed
        self.opener = Opener(key) if key else None
        with sock:
            sock.settimeout(self.timeout)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # the ACK leaves now
            self.state = "syncing"
            why = self._follow(sock)
            if why is None:
                self.state = "off"
                return False
            t = time.monotonic()
            if self.last_applied <= SYNC_ROUND:
                self.state = "stood-down"  # the sync round alone is no consistent state
                records.event(g.lab, g.name, "stood-down", f"FT link lost before the first "
                              f"checkpoint ({why}): the secondary stands down")
                return False
            if not arbiter.claim(g.lab, g.name, self.session, arbiter.SECONDARY):
                self.state = "stood-down"
                records.event(g.lab, g.name, "stood-down", f"FT link lost ({why}): the "
                              "primary won the arbiter, the secondary stands down",
                              checkpoint=self.last_applied)
                return False
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)  # a live primary learns it at its next send
        self._go_live(why, t, on_live)
        return True

    def _follow(self, sock: socket.socket) -> str | None:
        """Apply checkpoints until the link fails (why) or the primary says BYE (None)."""
        mem = self.guest.memory
        staged: Staged = []
        mark: int | None = None
        device: bytes | None = None
        try:
            while True:
                frame = protocol.read_frame(sock)
                if frame.kind == protocol.PAGES and frame.pages == 0:
                    device = self._device(sock, frame)  # applied with the pages, at the end
                elif frame.kind == protocol.PAGES:
                    if frame.start + frame.pages > mem.n_pages or \
                            frame.length != frame.pages * PAGE_SIZE + self._overhead:
                        raise protocol.ProtocolError(f"bad page run {frame}")
                    staged.append((frame.start, frame.pages, self._payload(sock, frame)))
                elif frame.kind == protocol.ZERO and frame.pages == 0:
                    mark = frame.start  # output commit: the records of this checkpoint
                elif frame.kind == protocol.ZERO:
                    if frame.start + frame.pages > mem.n_pages:
                        raise protocol.ProtocolError(f"bad zero run {frame}")
                    staged.append((frame.start, frame.pages, None))
                elif frame.kind == protocol.ROUND_END:
                    self._apply(staged)
                    staged.clear()
                    if device is not None:
                        self.guest.restore_device(device)
                        device = None
                    if mark is not None:
                        self.output_mark, mark = mark, None
                    self.last_applied = frame.round
                    if frame.round > SYNC_ROUND:
                        self.state = "protected"
                    sock.sendall(protocol.pack(protocol.ACK, frame.round))
                elif frame.kind == protocol.BYE:
                    return None
                else:
                    raise protocol.ProtocolError(f"unexpected frame {frame}")
        except TimeoutError:
            return f"no checkpoint for {self.timeout:.1f} s"
        except (OSError, protocol.ProtocolError) as err:
            return str(err) or type(err).__name__
        except InvalidTag:  # a sealed checkpoint changed on the way: this link is not trusted
            return "a checkpoint failed its AES-GCM check"

    def _device(self, sock: socket.socket, frame: protocol.Frame) -> bytes:
        """A checkpoint's device state (a PAGES frame of no pages, primary.py)."""
        if frame.length > MAX_DEVICE or frame.length < self._overhead:
            raise protocol.ProtocolError(f"device state of {frame.length} bytes")
        return bytes(self._payload(sock, frame))

    @property
    def _overhead(self) -> int:
        return OVERHEAD if self.opener is not None else 0

    def _payload(self, sock: socket.socket, frame: protocol.Frame) -> bytes | bytearray:
        """A frame's payload, opened when the link is sealed (a changed byte: InvalidTag)."""
        data = bytearray(frame.length)
        protocol.recv_exact(sock, memoryview(data))
        if self.opener is None:
            return data
        return self.opener.open(protocol.pack(*frame), memoryview(data))

    def _apply(self, staged: Staged) -> None:
        pages = self.guest.memory.pages
        for start, count, data in staged:
            if data is None:
                pages[start:start + count] = 0
            else:
                pages[start:start + count] = np.frombuffer(data, np.uint8).reshape(count,
                                                                                   PAGE_SIZE)
                self.applied_bytes += len(data)

    def _go_live(self, why: str, t: float, on_live: Callable[[Guest], None]) -> None:
        g = self.guest
        self.live_from = self.last_applied
        self.live_writes = g.workload.writes  # from the checkpoint's device state
        if self.verify:  # test hook: the state it went live from, before a write
            self.live_digest = g.memory.digest()
        g.workload.start()
        out = self.output_config
        if out and self.output_mark is not None:  # the records continue after the last
            # ones the outside may have seen; alone now, they leave as they are made
            self.output = Output(float(out["rate"]), lambda: g.workload.running,
                                 self.output_mark)
            self.output.unprotected()
            self.output.start(str(out["ns"]), str(out["address"]), int(out["port"]))
        self.failover_ms = (time.monotonic() - t) * 1000
        self.state = "live"
        on_live(g)
        failed = None
        with contextlib.suppress(NotFound):
            failed = records.load(g.lab, g.name).primary
        records.update(g.lab, g.name, state=records.FAILED_OVER, primary=g.host,
                       primary_pid=os.getpid(), since=time.time())
        records.event(g.lab, g.name, "failover", f"FT link lost ({why}): the secondary won "
                      f"the arbiter and runs the VM on {g.host} from checkpoint "
                      f"{self.live_from}", checkpoint=self.live_from, digest=self.live_digest)
        if failed is not None and arbiter.on_controller(g.lab):  # FT-2: a new secondary
            from .reprotect import in_background  # only a VM that went on loads it

            in_background(g.lab, g.name, failed)
