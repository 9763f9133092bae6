"""The source side of a live migration, run inside the VM's own process (it holds the memory).

    key from the ticket -> hello (mode) -> pre-copy rounds while the guest runs (after each, a probe
    measures the switchover's fixed costs for the stop rule) -> stun -> last round
    -> device state -> target resumes, says when, with its memory digest (downtime
    ends) -> source hashes its frozen memory, sends its digest (verdict) -> equal:
    the target commits (registry), the source exits; different: DigestMismatch

Any failure before the target commits aborts: the target is told (or is gone)
and stops, the guest's throttle is lifted and it runs on here as if nothing
happened (its memory was only read).
"""

from __future__ import annotations

import base64
import contextlib
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

from ..errors import NotFound
from ..profiling import profiled
from ..trust.issuer import book
from ..trust.pki import TrustError
from ..vm import registry
from ..vm.control import LineReader, Message, send_line
from ..vm.guest import Guest
from . import crypto, protocol
from .precopy import MARGIN, THROTTLE_STEP, Plan, chunks
from .report import COMPLETED, MigrationReport, PairStat, RoundStat
from .streams import AllStreamsFailed, Stream, run_round

PROGRESS_EVERY = 0.5  # s between progress events inside a long round
MIN_BLOCKS = 256  # a digest backlog that measures the target's hash cost per page
SWITCHOVER_SLACK = 10.0  # s for the target to resume, and to commit after the verdict


class Refused(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def migrate_out(guest: Guest, params: dict[str, Any], mgmt: socket.socket,
                data: list[socket.socket], emit: Callable[[Message], None]) -> MigrationReport:
    with profiled("vmotion-source"):
        return _migrate_out(guest, params, mgmt, data, emit)


def _migrate_out(guest: Guest, params: dict[str, Any], mgmt: socket.socket,
                 data: list[socket.socket], emit: Callable[[Message], None]) -> MigrationReport:
    start = time.monotonic()
    mode = crypto.check_mode(str(params.get("encryption", crypto.OPPORTUNISTIC)))
    timeout = float(params.get("timeout", 15.0))
    plan = Plan(float(params.get("max_downtime", 0.1)), int(params.get("max_rounds", 10)),
                int(params.get("throttle_rounds", 6)), MARGIN)
    mem, load = guest.memory, guest.workload
    report = MigrationReport(guest.name, guest.host, str(params["target"]), memory=mem.size,
                             dirty_rate=load.rate, max_downtime_ms=plan.max_downtime * 1000,
                             encryption_mode=mode,
                             pairs=[PairStat(**p) for p in params["pairs"]],
                             target_pid=params.get("target_pid"))
    mgmt.settimeout(timeout)
    reader = LineReader(mgmt)
    streams: list[Stream] = []
    stunned = False
    try:
        key = _hello(guest, mgmt, reader, mode, len(data), report,
                     ticket_key(guest, str(params.get("ticket", "")), mode))
        rate_limit = params.get("rate_limit")
        streams = [Stream(i, s, report.pairs[i], timeout,
                          crypto.Sealer(key, i) if key else None, rate_limit, packed=True)
                   for i, s in enumerate(data)]
        rnd, rate, per_page = 0, 0.0, 0.0
        mem.mark_all_dirty()
        while True:
            rnd += 1
            stat = _round(streams, guest, rnd, emit, stunned=False)
            report.rounds.append(stat)
            if stat.bytes >= 4 << 20 or rate == 0:
                rate = stat.bytes / stat.seconds if stat.seconds > 0 else 0.0
            fixed, settle, blocks = _probe(streams, mgmt, reader, rnd, len(guest.device_state()))
            if blocks >= MIN_BLOCKS:
                per_page = settle / blocks  # DIGEST_PAGES = 1: a dirty page, a block to hash
            dirty = mem.dirty_count()
            step = plan.next_step(rnd, dirty, rate, fixed, per_page)
            report.fixed_cost_ms = fixed * 1000
            report.predicted_downtime_ms = plan.predict(dirty, rate, fixed, per_page) * 1000
            emit({"event": "round", "round": rnd, "dirty_left": stat.dirty_left,
                  "bytes": stat.bytes, "seconds": stat.seconds, "next": step,
                  "predicted_downtime_ms": report.predicted_downtime_ms,
                  "pairs": [p.to_dict() for p in report.pairs]})
            if step == "stun":
                break
            if step == "throttle":
                load.throttle *= THROTTLE_STEP
                report.throttled = True
                report.throttle_reason = (
                    f"pre-copy did not converge in {plan.max_rounds} rounds (guest dirties "
                    f"{load.rate / 1e6:.0f} MB/s, network {rate / 1e6:.0f} MB/s): guest slowed "
                    f"to {load.throttle:.0%} (SDPS)")
        t_stun = time.monotonic()
        load.pause()
        stunned = True
        emit({"event": "phase", "phase": "stunned", "round": rnd + 1})
        report.rounds.append(_round(streams, guest, rnd + 1, emit, stunned=True))
        t_resume = _switchover(guest, mgmt, reader, report, t_stun, timeout)
        emit({"event": "phase", "phase": "verifying", "round": rnd + 1})
        _verify(guest, mgmt, reader, report, t_resume, params.get("target_pid"))
        report.result, report.reason = COMPLETED, "resumed on the target; " + report.verify_note
    except (OSError, AllStreamsFailed, Refused, ValueError) as err:
        report.reason = str(err) or type(err).__name__
        report.code = err.code if isinstance(err, Refused) else type(err).__name__
        with contextlib.suppress(OSError):
            send_line(mgmt, {"type": "abort", "reason": report.reason})
        load.throttle = 1.0
        if stunned:
            load.resume()  # the guest never left: it runs on, here
    finally:
        report.crypto_seconds = sum(s.crypto_seconds for s in streams)
        for s in streams:
            s.close(bye=report.completed)
        with contextlib.suppress(OSError):
            mgmt.close()
        report.zero_pages_skipped = sum(r.zero_pages for r in report.rounds)
        report.total_seconds = time.monotonic() - start
    return report


def ticket_key(guest: Guest, ticket_id: str, mode: str) -> bytes | None:
    """The migration's AES key from this host's copy of its ticket (SEC-4), then that copy
    goes: the key is in this process's memory only, for this migration."""
    if mode == crypto.DISABLED:
        return None
    tickets = book(guest.lab, guest.host)
    try:
        ticket = tickets.get(ticket_id)
        tickets.discard(ticket_id)
    except TrustError as err:
        raise Refused("NoTicket", f"no usable vmotion ticket for this migration: {err}") from err
    if ticket is None or ticket.kind != "vmotion" or ticket.key is None:
        raise Refused("NoTicket", f"host {guest.host} holds no vmotion ticket with a key for "
                      "this migration (expired or never issued)")
    return ticket.key


def _hello(guest: Guest, mgmt: socket.socket, reader: LineReader, mode: str, n: int,
           report: MigrationReport, key: bytes | None) -> bytes | None:
    """Agree on encryption with the target agent. The key is not in the hello: both ends
    hold it in the migration's ticket (SEC-4)."""
    send_line(mgmt, {"type": "hello", "vm": guest.name, "memory": guest.memory.size,
                     "dirty_rate": guest.workload.rate, "seed": guest.seed, "streams": n,
                     "mode": mode})
    reply = reader.read()
    if reply is None:
        raise ConnectionError("target agent closed the management connection")
    if not reply.get("ok") and reply.get("code") not in (None, "SEC-1"):
        raise Refused(str(reply["code"]), str(reply.get("reason", "refused")))
    can = bool(reply.get("encryption"))
    if mode == crypto.REQUIRED and not can:
        raise Refused("SEC-1", f"Encrypted vMotion is required but host {report.target} does "
                               "not support it: migrate with encryption opportunistic or "
                               "disabled, or to another host")
    if not reply.get("ok"):
        raise Refused(str(reply.get("code", "Refused")), str(reply.get("reason", "refused")))
    use, note = crypto.decide(mode, can)
    report.encrypted, report.encryption_note = use, note
    report.cipher = crypto.CIPHER if use else None
    return key if use else None


def _round(streams: list[Stream], guest: Guest, rnd: int, emit: Callable[[Message], None],
           stunned: bool) -> RoundStat:
    mem = guest.memory
    work = chunks(mem.take_dirty())
    done = threading.Event()

    def ticker() -> None:
        while not done.wait(PROGRESS_EVERY):
            emit({"event": "progress", "round": rnd, "stunned": stunned,
                  "dirty_left": mem.dirty_count(),
                  "pairs": [s.stat.to_dict() for s in streams]})

    tick = threading.Thread(target=ticker, daemon=True)
    tick.start()
    t = time.perf_counter()
    try:
        totals = run_round(streams, mem, rnd, work)
    finally:
        done.set()
    return RoundStat(rnd, totals.pages, totals.zeros, totals.bytes, time.perf_counter() - t,
                     mem.dirty_count(), stunned)


def _probe(streams: list[Stream], mgmt: socket.socket, reader: LineReader, rnd: int,
           device_bytes: int) -> tuple[float, float, int]:
    """The switchover's costs now: (fixed s, s the target took to hash its digest backlog,
    blocks in it). Fixed: an empty round barrier on every live stream (sent on all, then
    every ACK read) plus a management round trip carrying as much as the device state;
    the target first hashes its backlog (not a fixed cost: the stop rule counts the last
    round's blocks at the measured per-block cost)."""
    t = time.perf_counter()
    sent = [s for s in streams if s.alive and _try(s, rnd, lambda s: s.sock.sendall(
        protocol.pack(protocol.ROUND_END, rnd)))]
    for s in sent:
        _try(s, rnd, lambda s: _ack(s, rnd))
    send_line(mgmt, {"type": "probe", "pad": "x" * (device_bytes * 4 // 3 + 4)})
    reply = reader.read()
    if reply is None or reply.get("type") != "probe":
        raise ConnectionError("target agent closed the management connection")
    settle = float(reply.get("settle_s", 0.0))
    return time.perf_counter() - t - settle, settle, int(reply.get("blocks", 0))


def _ack(stream: Stream, rnd: int) -> None:
    frame = protocol.read_frame(stream.sock)
    if frame.kind != protocol.ACK or frame.round != rnd:
        raise protocol.ProtocolError(f"expected ACK of round {rnd}, got {frame}")


def _try(stream: Stream, rnd: int, step: Callable[[Stream], None]) -> bool:
    """One probe step on a stream; a stream that fails it is dropped (its round was acked:
    nothing of it is lost)."""
    try:
        step(stream)
    except (OSError, protocol.ProtocolError) as err:
        stream.stat.failed = f"probe after round {rnd}: {err}"
        with contextlib.suppress(OSError):
            stream.sock.shutdown(socket.SHUT_RDWR)
        return False
    return True


def _switchover(guest: Guest, mgmt: socket.socket, reader: LineReader, report: MigrationReport,
                t_stun: float, timeout: float) -> float:
    """Device state to the target; it resumes at once. Its resume time (downtime ends)."""
    device = guest.device_state()
    send_line(mgmt, {"type": "switchover", "device": base64.b64encode(device).decode(),
                     "t_stun": t_stun})
    mgmt.settimeout(timeout + SWITCHOVER_SLACK)
    reply = reader.read()
    if reply is None or not reply.get("ok"):
        why = reply.get("reason") if reply else "target closed the management connection"
        raise Refused("SwitchoverFailed", f"target did not resume: {why}")
    t_resume = float(reply["t_resume"])
    report.downtime_ms = (t_resume - t_stun) * 1000
    report.target_digest = str(reply["digest"])
    return t_resume


def _verify(guest: Guest, mgmt: socket.socket, reader: LineReader, report: MigrationReport,
            t_resume: float, target_pid: int | None) -> None:
    """The source, paused for good, hashes its frozen memory; equal digests commit."""
    t = time.perf_counter()
    report.digest = guest.memory.digest()
    report.digest_ms = (time.perf_counter() - t) * 1000
    send_line(mgmt, {"type": "verdict", "digest": report.digest})
    if report.digest != report.target_digest:
        raise Refused("DigestMismatch", f"memory digest mismatch after resume: source "
                      f"{report.digest[:16]}, target {str(report.target_digest)[:16]}: "
                      "the target was stopped, the VM runs on at the source")
    try:
        reply = reader.read()
    except OSError:
        reply = None
    committed = reply is not None and bool(reply.get("committed"))
    if not committed and not _committed(guest, target_pid):  # the registry: who runs the VM
        why = reply.get("reason") if reply else "target closed the management connection"
        raise Refused("CommitFailed", f"target did not commit: {why}")
    report.verify_ms = (time.monotonic() - t_resume) * 1000
    report.verified = True
    report.verify_note = (f"memory verified after resume: the target ran {report.verify_ms:.0f}"
                          f" ms unverified while the source hashed its frozen memory "
                          f"({report.digest_ms:.0f} ms); digests equal")


def _committed(guest: Guest, target_pid: int | None) -> bool:
    try:
        return target_pid is not None and registry.load(guest.lab, guest.name).pid == target_pid
    except NotFound:
        return False
