"""The primary's side of FT, run inside the VM's own process (it holds the memory).

One sync round sends every page while the guest runs (vMotion's pre-copy round,
`vmotion.streams.run_round`); then every epoch a checkpoint: pause the guest's
writer, take the pages it dirtied since the last checkpoint (the dirty log pre-copy
uses), copy them into a checkpoint buffer and resume (as Remus does: the guest is
stopped for a memory copy, not for the network), then send the copy as round number
N over the FT logging connection and wait for the secondary's ACK of N (vMotion's
round barrier: sent once N is applied). The buffer is a second guest-sized anonymous
mapping, faulted in only where pages were ever dirtied. The device state taken at the
same pause travels with the pages; with a key in the pair's ticket (SEC-1) both are
sealed with vmotion.crypto's AES-GCM sealer.

When the link fails (a send error, or no ACK within `timeout`) the guest is paused
and asks the arbiter (FT-2): won, it goes on unprotected; lost, the secondary is
live already and this copy stops without running another instruction.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

from ..errors import NotFound
from ..trust.issuer import book
from ..trust.pki import TrustError
from ..vm.guest import Guest
from ..vm.memory import GuestMemory
from ..vmotion import protocol
from ..vmotion.crypto import CIPHER, OVERHEAD, Sealer
from ..vmotion.precopy import chunks
from ..vmotion.report import PairStat
from ..vmotion.streams import AllStreamsFailed, Stream, run_round
from . import arbiter, records
from .output import Output

SYNC_ROUND = 1  # rounds 2, 3, ... are checkpoints


class Primary:
    """Checkpoints of one protected VM; `stats()` is what `vm ft status` shows."""

    def __init__(self, guest: Guest, sock: socket.socket, params: dict[str, Any],
                 on_lost: Callable[[], None], output: Output | None = None) -> None:
        """`output`: the VM's output stream already served here (a secondary that went
        live, now re-protected): it is held back again rather than served twice."""
        self.guest = guest
        self.session = str(params["session"])
        self.epoch = float(params.get("epoch", 0.05))
        self.verify = bool(params.get("verify", False))
        pair = PairStat(**params["pair"])
        # Small frames (the output mark, ROUND_END) back to back: without NODELAY, Nagle
        # holds the second until the first is acked, and delayed ACK makes that 40 ms.
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        key = _ticket_key(guest, str(params.get("ticket", ""))) if params.get(
            "encrypted") else None
        self.stream = Stream(0, sock, pair, float(params.get("timeout", 2.0)),
                             Sealer(key, 0) if key else None)  # one sealer: unique nonces
        self.on_lost = on_lost
        out = params.get("output")  # output commit: the VM's record stream (output.py)
        self.output: Output | None = None
        if out and output is not None:
            self.output = output
            output.protect()
        elif out:
            self.output = Output(float(out["rate"]), lambda: guest.workload.running)
            self.output.start(str(out["ns"]), str(out["address"]), int(out["port"]))
        self.state = "syncing"
        self.checkpoints = 0
        self.last_acked = 0
        self.last_ack_time = 0.0
        self.last_bytes = 0
        self.checkpoint_bytes = 0
        self.sync_bytes = 0
        self.paused_s = 0.0
        self.checkpoint_s = 0.0  # pause to ACK, summed
        self.started = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="ft-primary", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """`ft off`: the secondary gets BYE and stands down; the guest runs on here."""
        self._stop.set()
        self._thread.join(10.0)

    def stats(self) -> dict[str, Any]:
        elapsed = time.monotonic() - self.started if self.started else 0.0
        return {"state": self.state, "checkpoints": self.checkpoints,
                "last_acked": self.last_acked,
                "checkpoints_per_s": self.checkpoints / elapsed if elapsed > 0 else 0.0,
                "bytes_per_checkpoint": (self.checkpoint_bytes / self.checkpoints
                                         if self.checkpoints else 0.0),
                "last_bytes": self.last_bytes, "sync_bytes": self.sync_bytes,
                "lag_ms": ((time.monotonic() - self.last_ack_time) * 1000
                           if self.last_ack_time else None),
                "paused_fraction": self.paused_s / elapsed if elapsed > 0 else 0.0,
                "checkpoint_ms": (self.checkpoint_s / self.checkpoints * 1000
                                  if self.checkpoints else 0.0),
                "output_produced": self.output.produced if self.output else None,
                "output_released": self.output.released if self.output else None,
                "epoch_ms": self.epoch * 1000,
                "cipher": CIPHER if self.stream.sealer else None,
                "adapter": self.stream.stat.source_vmk,
                "peer": f"{self.stream.stat.target_vmk} {self.stream.stat.target_address}"}

    def _run(self) -> None:
        mem, load = self.guest.memory, self.guest.workload
        try:
            mem.mark_all_dirty()
            self.sync_bytes = run_round([self.stream], mem, SYNC_ROUND,
                                        chunks(mem.take_dirty())).bytes
            self.started = time.monotonic()
            self.state = "protected"
            shadow = GuestMemory(mem.size)  # the checkpoint buffer: pages as at the pause
            rnd, due = SYNC_ROUND, time.monotonic()
            while True:
                due = max(due + self.epoch, time.monotonic())  # a period, not a gap
                if self._stop.wait(due - time.monotonic()):
                    break
                rnd += 1
                t = time.perf_counter()
                load.pause()
                try:  # Remus: copy the epoch's pages out, resume, then send the copy
                    idx = mem.take_dirty()
                    shadow.pages[idx] = mem.pages[idx]
                    mark = self.output.mark() if self.output else None
                    device = self.guest.device_state()  # vCPUs, devices, the workload's
                    # progress: what the VM holds besides memory, as at this pause
                    if self.verify:  # test hook: the memory this checkpoint stands for,
                        # logged before it is sent (this process may die before the ACK)
                        with records.checkpoint_log(self.guest.lab, self.guest.name).open(
                                "a", encoding="utf-8") as log:
                            log.write(f"{rnd} {mem.digest()} {load.writes}\n")
                finally:
                    load.resume()
                    self.paused_s += time.perf_counter() - t
                try:
                    if mark is not None:  # the records this checkpoint stands for:
                        self.stream.sock.sendall(  # a ZERO run of no pages (secondary.py)
                            protocol.pack(protocol.ZERO, rnd, mark, 0))
                    sent = self._send_device(rnd, device)
                    sent += run_round([self.stream], shadow, rnd, chunks(idx)).bytes
                except OSError as err:  # the mark's send: the link broke as in a round
                    load.pause()
                    self._link_lost(str(err))
                    if self.state != "stood-down":
                        load.resume()
                    return
                except AllStreamsFailed as err:
                    load.pause()  # no instruction runs until the arbiter has answered
                    self._link_lost(str(err))  # returns only when this copy goes on
                    if self.state != "stood-down":
                        load.resume()
                    return
                if self.output is not None and mark is not None:
                    self.output.release(mark)  # output commit: acked, it may leave
                self.checkpoints += 1
                self.last_acked, self.last_ack_time = rnd, time.monotonic()
                self.checkpoint_s += time.perf_counter() - t
                self.last_bytes = sent
                self.checkpoint_bytes += sent
            self.stream.close(bye=True)
            self.state = "off"
            if self.output is not None:
                self.output.unprotected()
        except AllStreamsFailed as err:  # the sync round: the secondary never had a state
            self.state = "unprotected"
            records.event(self.guest.lab, self.guest.name, "link-lost",
                          f"FT link lost during the sync round: {err}")
        finally:
            with contextlib.suppress(OSError):
                self.stream.sock.close()

    def _send_device(self, rnd: int, device: bytes) -> int:
        """The device state as a PAGES frame of no pages (secondary.py applies it with the
        checkpoint's pages); sealed like them when the link is encrypted."""
        stream = self.stream
        if stream.sealer is None:
            stream.sock.sendall(protocol.pack(protocol.PAGES, rnd, 0, 0, len(device)) + device)
            return len(device)
        header = protocol.pack(protocol.PAGES, rnd, 0, 0, len(device) + OVERHEAD)
        sealed = stream.sealer.seal(header, device)
        stream.sock.sendall(header + sealed)
        return len(sealed)

    def _link_lost(self, why: str) -> None:
        """The guest is paused: ask the arbiter before it runs another instruction."""
        lab, vm = self.guest.lab, self.guest.name
        if arbiter.claim(lab, vm, self.session, arbiter.PRIMARY):
            self.state = "unprotected"
            if self.output is not None:
                self.output.unprotected()
            lost = None
            with contextlib.suppress(NotFound):
                lost = records.load(lab, vm).secondary
            records.update(lab, vm, state=records.UNPROTECTED)
            records.event(lab, vm, "link-lost", f"FT link lost ({why}): the primary won the "
                          "arbiter and runs on unprotected", checkpoint=self.last_acked)
            if lost is not None and arbiter.on_controller(lab):  # FT-2: a new secondary,
                from .reprotect import in_background  # not on the host it lost

                in_background(lab, vm, lost)
            return
        self.state = "stood-down"
        records.event(lab, vm, "stood-down", f"FT link lost ({why}): the secondary won the "
                      "arbiter, the primary stops", checkpoint=self.last_acked)
        if self.output is not None:
            self.output.close()
        self.on_lost()


def _ticket_key(guest: Guest, ticket_id: str) -> bytes:
    """The pair's AES key from this host's copy of the FT ticket (SEC-4), which then goes:
    the key is in this process's memory only (vMotion's source does the same)."""
    tickets = book(guest.lab, guest.host)
    try:
        ticket = tickets.get(ticket_id)
        tickets.discard(ticket_id)
    except TrustError as err:
        raise ValueError(f"no usable FT ticket on {guest.host}: {err}") from err
    if ticket is None or ticket.kind != "ft" or ticket.key is None:
        raise ValueError(f"host {guest.host} holds no FT ticket with a key for this pair")
    return ticket.key
