"""One Debian tgtd per storage array: start it in the array's namespace, configure, stop it.

tgtd's management channel is a unix socket, /var/run/tgtd/socket.<N>, in the
file system and so shared by every namespace; `-C N` gives each array its own
N, derived from the lab and array names. tgtd ignores SIGTERM, so stopping is
SIGKILL after a short grace, and then its socket files are removed (a killed
tgtd leaves them). Every tgtd vmknet starts carries `-p <run dir>/labs/<lab>/
arrays/<array>/tgtd.pid` (tgtd writes that file only as a daemon; it runs in
the foreground here): the marker `lab down` finds the lab's targets by in
/proc after a crash lost every record.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import shutil
import subprocess
import time
import zlib
from pathlib import Path

from ..errors import DataplaneError, NotFound
from ..processes import alive, cmdlines, terminate

TGTD = "tgtd"
TGTADM = "tgtadm"
SOCKET_DIR = Path("/var/run/tgtd")
# tgtd takes control ports 0..32767; 0 is a system tgtd's. Lab arrays use 10000..31999.
PORT_BASE = 10000
PORT_SPAN = 22000
READY_TIMEOUT = 5.0
STOP_GRACE = 1.0  # s: tgtd ignores SIGTERM; give it this long, then SIGKILL
ADM_TIMEOUT = 10.0
SEGMENT = 262144  # bytes per data segment the arrays' targets declare (tune)


def control_port(lab: str, array: str) -> int:
    """The array's tgtd control port: stable per (lab, array), never 0 (the system tgtd)."""
    return PORT_BASE + zlib.crc32(f"{lab}/{array}".encode()) % PORT_SPAN


def marker(lab: str) -> str:
    """The part of a lab's tgtd command lines that names the lab (its pid-file path)."""
    return f"/labs/{lab}/arrays/"


def start(ns: str, port: int, pid_file: Path, log: Path) -> subprocess.Popen[bytes]:
    """tgtd in namespace `ns` on control port `port`, in the foreground, logging to `log`."""
    if shutil.which(TGTD) is None:
        raise NotFound("tgtd is not installed: run scripts/setup.sh (Debian package tgt)",
                       code="NotFound")
    if (SOCKET_DIR / f"socket.{port}.lock").exists() and _port_busy(port):
        raise DataplaneError(f"tgtd control port {port} is in use by another tgtd: rename "
                             "the array or stop that target", code="DataplaneError", port=port)
    pid_file.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:
        proc = subprocess.Popen(["ip", "netns", "exec", ns, TGTD, "-f", "-C", str(port),
                                 "-p", str(pid_file)],
                                stdin=subprocess.DEVNULL, stdout=out, stderr=out,
                                start_new_session=True)
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            # The log goes with the lab's run directory: quote its last line instead.
            raise DataplaneError(f"tgtd in {ns} exited with {proc.returncode}: {_last(log)}",
                                 code="DataplaneError", ns=ns)
        if _port_busy(port):
            return proc
        time.sleep(0.05)
    stop_pids([proc.pid], port)
    raise DataplaneError(f"tgtd in {ns} did not open control port {port} within "
                         f"{READY_TIMEOUT:.0f} s: {_last(log)}", code="DataplaneError", ns=ns)


def _last(log: Path) -> str:
    """The line of tgtd's log that names the cause (its last complaint, else its last line).

    tgtd always logs that RDMA is unavailable and it cannot adjust its OOM score
    here; those are noise, not causes.
    """
    try:
        lines = log.read_text(encoding="utf-8", errors="replace").strip().splitlines()
    except OSError:
        return "no log"
    noise = ("RDMA", "oom", "nr_open")
    causes = [line for line in lines if not any(n in line for n in noise)
              and any(w in line.lower() for w in ("error", "fail", "range", "unable", "cannot",
                                                  "can't", "in use"))]
    return (causes or lines or ["nothing logged"])[-1][:200]


def _port_busy(port: int) -> bool:
    """Whether a tgtd answers on control port `port`."""
    try:
        adm(port, "--op", "show", "--mode", "sys")
    except DataplaneError:
        return False
    return True


def adm(port: int, *args: str) -> str:
    """Run `tgtadm -C port --lld iscsi ARGS`; a failure is one DataplaneError line."""
    cmd = [TGTADM, "-C", str(port), "--lld", "iscsi", *args]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=ADM_TIMEOUT,
                              check=False)
    except FileNotFoundError:
        raise NotFound("tgtadm is not installed: run scripts/setup.sh (Debian package tgt)",
                       code="NotFound") from None
    except subprocess.TimeoutExpired:
        raise DataplaneError(f"tgtadm {' '.join(args)} timed out", code="DataplaneError") from None
    if done.returncode != 0:
        why = (done.stderr or done.stdout).strip().splitlines()
        raise DataplaneError(f"tgtadm {' '.join(args)}: {why[-1] if why else done.returncode}",
                             code="DataplaneError", port=port)
    return done.stdout


def add_target(port: int, tid: int, iqn: str) -> None:
    adm(port, "--op", "new", "--mode", "target", "--tid", str(tid), "-T", iqn)


def tune(port: int, tid: int) -> None:
    """Data segments of up to 256 KiB each way (tgt's default is 8 KiB, RFC 7143's minimum
    practice): a 256 KiB WRITE's solicited data then goes in one Data-Out PDU, not 24, which
    on this 2-core lab was what kept two round-robin paths from doubling one (bench_storage)."""
    for key in ("MaxRecvDataSegmentLength", "MaxXmitDataSegmentLength"):
        adm(port, "--op", "update", "--mode", "target", "--tid", str(tid), "-n", key,
            "-v", str(SEGMENT))


def add_lun(port: int, tid: int, lun: int, backing: Path) -> None:
    adm(port, "--op", "new", "--mode", "logicalunit", "--tid", str(tid), "--lun", str(lun),
        "-b", str(backing))


def allow_all(port: int, tid: int) -> None:
    """Accept every initiator: the lab's isolation is the network's (SW-3, SEC-6), not ACLs."""
    adm(port, "--op", "bind", "--mode", "target", "--tid", str(tid), "-I", "ALL")


def lab_pids(lab: str) -> list[int]:
    """Every tgtd of `lab`, found by its command line alone."""
    mark, tgtd = marker(lab).encode(), TGTD.encode()
    return [pid for pid, argv in cmdlines().items()
            if os.path.basename(argv[0]) == tgtd and any(mark in a for a in argv)]


def port_of(pid: int) -> int | None:
    """The control port on tgtd `pid`'s command line."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            argv = f.read().decode(errors="replace").split("\0")
    except OSError:
        return None
    for flag, value in itertools.pairwise(argv):
        if flag in ("-C", "--control-port") and value.isdigit():
            return int(value)
    return None


def stop_pids(pids: list[int], *ports: int) -> None:
    """End tgtds (SIGTERM is ignored: SIGKILL after the grace) and remove their sockets."""
    terminate(pids, STOP_GRACE)
    deadline = time.monotonic() + READY_TIMEOUT
    while any(alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.02)
    for port in ports:
        forget_port(port)


def forget_port(port: int) -> None:
    """Remove the socket files of control port `port` unless a tgtd still answers there."""
    if not (SOCKET_DIR / f"socket.{port}").exists() or _port_busy(port):
        return
    for name in (f"socket.{port}", f"socket.{port}.lock"):
        with contextlib.suppress(FileNotFoundError):
            (SOCKET_DIR / name).unlink()
