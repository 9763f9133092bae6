"""The source side of a live migration, run inside the VM's own process (it holds the memory).

    hello (mode, key) -> pre-copy rounds while the guest runs -> stun -> last round
    -> device state + digest -> target verifies, resumes, says so -> source exits

Any failure before the target confirms resume aborts: the target is told (or is
gone), the guest's throttle is lifted and it runs on here as if nothing happened
(its memory was only read).
"""

from __future__ import annotations

import base64
import contextlib
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

from ..vm.control import LineReader, Message, send_line
from ..vm.guest import Guest
from . import crypto
from .precopy import THROTTLE_STEP, Plan, chunks
from .report import COMPLETED, MigrationReport, PairStat, RoundStat
from .streams import AllStreamsFailed, Stream, run_round

PROGRESS_EVERY = 0.5  # s between progress events inside a long round
SWITCHOVER_SLACK = 10.0  # s for the target to hash its memory and resume


class Refused(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def migrate_out(guest: Guest, params: dict[str, Any], mgmt: socket.socket,
                data: list[socket.socket], emit: Callable[[Message], None]) -> MigrationReport:
    start = time.monotonic()
    mode = crypto.check_mode(str(params.get("encryption", crypto.OPPORTUNISTIC)))
    timeout = float(params.get("timeout", 15.0))
    plan = Plan(float(params.get("max_downtime", 0.1)), int(params.get("max_rounds", 10)),
                int(params.get("throttle_rounds", 6)))
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
        key = _hello(guest, mgmt, reader, mode, len(data), report)
        rate_limit = params.get("rate_limit")
        streams = [Stream(i, s, report.pairs[i], timeout,
                          crypto.Sealer(key, i) if key else None, rate_limit)
                   for i, s in enumerate(data)]
        rnd, rate = 0, 0.0
        mem.mark_all_dirty()
        while True:
            rnd += 1
            stat = _round(streams, guest, rnd, emit, stunned=False)
            report.rounds.append(stat)
            if stat.bytes >= 4 << 20 or rate == 0:
                rate = stat.bytes / stat.seconds if stat.seconds > 0 else 0.0
            step = plan.next_step(rnd, stat.dirty_left, rate)
            emit({"event": "round", "round": rnd, "dirty_left": stat.dirty_left,
                  "bytes": stat.bytes, "seconds": stat.seconds, "next": step,
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
        _switchover(guest, mgmt, reader, report, t_stun, timeout)
        report.result, report.reason = COMPLETED, "resumed on the target"
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


def _hello(guest: Guest, mgmt: socket.socket, reader: LineReader, mode: str, n: int,
           report: MigrationReport) -> bytes | None:
    """Agree on encryption with the target agent; the key goes over the management network."""
    key = crypto.new_key() if mode != crypto.DISABLED else None
    send_line(mgmt, {"type": "hello", "vm": guest.name, "memory": guest.memory.size,
                     "dirty_rate": guest.workload.rate, "seed": guest.seed, "streams": n,
                     "mode": mode, "key": key.hex() if key else None})
    reply = reader.read()
    if reply is None:
        raise ConnectionError("target agent closed the management connection")
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


def _switchover(guest: Guest, mgmt: socket.socket, reader: LineReader, report: MigrationReport,
                t_stun: float, timeout: float) -> None:
    t = time.perf_counter()
    report.digest = guest.memory.digest()
    report.digest_ms = (time.perf_counter() - t) * 1000
    device = guest.device_state()
    send_line(mgmt, {"type": "switchover", "digest": report.digest,
                     "device": base64.b64encode(device).decode(), "t_stun": t_stun})
    mgmt.settimeout(timeout + SWITCHOVER_SLACK)
    reply = reader.read()
    if reply is None or not reply.get("ok"):
        why = reply.get("reason") if reply else "target closed the management connection"
        raise Refused("SwitchoverFailed", f"target did not resume: {why}")
    report.downtime_ms = (float(reply["t_resume"]) - t_stun) * 1000
