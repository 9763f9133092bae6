"""The peer in the vMotion benchmark: QEMU's own live migration over the same adapter pair.

    ensure_qemu(install=True)          # apt-get installs qemu-system-x86 when it is missing
    result = qemu_migrate(children, src_ns, dst_ns, "198.18.4.21", 1024, folder, channels=4)

Two `qemu-system-x86_64` processes (TCG, no disk, no display): the source in the
source host's vmotion stack namespace with its guest RAM backed by a file of random
bytes (so nothing is skipped as zero: every page crosses the wire, as in the issue's
measurement), the target in the target's, `-incoming defer` on the target adapter's
address. Both are steered over QMP (a unix socket each): the migration capabilities
(multifd with `channels` channels when > 1), `migrate-incoming`, `migrate`, then
`query-migrate` until it completes. The throughput is QEMU's own account: RAM bytes
transferred over the migration's total time, and its downtime.

QEMU is the benchmark's peer, not the project's: it is installed here (bench set-up),
never by the project's runtime dependencies.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

QEMU = "qemu-system-x86_64"
PACKAGE = "qemu-system-x86"
QMP_TIMEOUT = 20.0
MIGRATION_TIMEOUT = 300.0
PORT = 4444
MIB = 1 << 20


class Starter(Protocol):
    def start(self, argv: list[str]) -> subprocess.Popen[str]: ...


class QemuError(RuntimeError):
    pass


def ensure_qemu(install: bool) -> str | None:
    """None when qemu-system-x86_64 is there (installed now when `install`), else why not."""
    if shutil.which(QEMU):
        return None
    if not install:
        return "skipped: qemu not installed"
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    done = subprocess.run(["apt-get", "install", "-y", "--no-install-recommends", PACKAGE],
                          capture_output=True, text=True, env=env, check=False, timeout=900)
    if done.returncode != 0 or not shutil.which(QEMU):
        return f"skipped: apt-get install {PACKAGE} failed: {done.stderr.strip()[-200:]}"
    return None


@dataclass
class QemuResult:
    channels: int
    transferred: int  # RAM bytes QEMU sent
    total_ms: float
    downtime_ms: float
    setup_ms: float

    @property
    def mbit(self) -> float:
        seconds = (self.total_ms - self.setup_ms) / 1000
        return self.transferred * 8 / seconds / 1e6 if seconds > 0 else 0.0


class Qmp:
    """A QMP connection: one JSON object per line; events are skipped."""

    def __init__(self, path: Path, deadline: float) -> None:
        while True:
            try:
                self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                self.sock.settimeout(QMP_TIMEOUT)
                self.sock.connect(str(path))
                break
            except OSError:
                self.sock.close()
                if time.monotonic() > deadline:
                    raise QemuError(f"no QMP socket at {path}") from None
                time.sleep(0.05)
        self.file = self.sock.makefile("rwb")
        self._read()  # the greeting
        self.call("qmp_capabilities")

    def _read(self) -> dict[str, Any]:
        while True:
            line = self.file.readline()
            if not line:
                raise QemuError("QEMU closed its QMP socket")
            msg = json.loads(line)
            if isinstance(msg, dict) and "event" not in msg:
                return msg

    def call(self, command: str, **arguments: Any) -> Any:
        req: dict[str, Any] = {"execute": command}
        if arguments:
            req["arguments"] = arguments
        self.file.write(json.dumps(req).encode() + b"\n")
        self.file.flush()
        reply = self._read()
        if "error" in reply:
            raise QemuError(f"{command}: {reply['error'].get('desc', reply['error'])}")
        return reply.get("return")

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.file.close()
            self.sock.close()


def random_ram(path: Path, mib: int) -> None:
    """The source's guest RAM: `mib` MiB of random bytes (nothing for QEMU to skip)."""
    with open(path, "wb") as f:
        for _ in range(mib):
            f.write(os.urandom(MIB))


def _argv(ns: str, qmp: Path, mib: int, ram: Path | None, incoming: bool) -> list[str]:
    argv = ["ip", "netns", "exec", ns, QEMU, "-machine", "pc,accel=tcg", "-m", f"{mib}M",
            "-nodefaults", "-display", "none", "-serial", "none", "-monitor", "none",
            "-qmp", f"unix:{qmp},server=on,wait=off"]
    if ram is not None:
        argv += ["-object", f"memory-backend-file,id=ram0,size={mib}M,mem-path={ram},share=on",
                 "-machine", "memory-backend=ram0"]
    else:
        argv += ["-object", f"memory-backend-ram,id=ram0,size={mib}M",
                 "-machine", "memory-backend=ram0"]
    if incoming:
        argv += ["-incoming", "defer"]
    return argv


def _caps(qmp: Qmp, channels: int) -> None:
    if channels > 1:
        qmp.call("migrate-set-capabilities",
                 capabilities=[{"capability": "multifd", "state": True}])
        qmp.call("migrate-set-parameters", **{"multifd-channels": channels})
    qmp.call("migrate-set-parameters", **{"max-bandwidth": 0, "downtime-limit": 100})


def qemu_migrate(children: Starter, src_ns: str, dst_ns: str, dst_address: str, mib: int,
                 folder: Path, channels: int = 1, port: int = PORT) -> QemuResult:
    """One QEMU live migration of a `mib` MiB guest from `src_ns` to `dst_address` in `dst_ns`."""
    folder.mkdir(parents=True, exist_ok=True)
    ram = folder / "qemu-ram.bin"
    if not ram.exists() or ram.stat().st_size != mib * MIB:
        random_ram(ram, mib)
    src_qmp, dst_qmp = folder / f"src-{channels}.qmp", folder / f"dst-{channels}.qmp"
    procs = [children.start(_argv(dst_ns, dst_qmp, mib, None, incoming=True)),
             children.start(_argv(src_ns, src_qmp, mib, ram, incoming=False))]
    deadline = time.monotonic() + QMP_TIMEOUT
    qmps: list[Qmp] = []
    try:
        dst, src = Qmp(dst_qmp, deadline), Qmp(src_qmp, deadline)
        qmps = [dst, src]
        _caps(dst, channels)
        _caps(src, channels)
        dst.call("migrate-incoming", uri=f"tcp:{dst_address}:{port}")
        src.call("migrate", uri=f"tcp:{dst_address}:{port}")
        end = time.monotonic() + MIGRATION_TIMEOUT
        while True:
            info = src.call("query-migrate")
            status = info.get("status")
            if status == "completed":
                return QemuResult(channels, int(info["ram"]["transferred"]),
                                  float(info["total-time"]), float(info.get("downtime", 0)),
                                  float(info.get("setup-time", 0)))
            if status in ("failed", "cancelled") or time.monotonic() > end:
                raise QemuError(f"QEMU migration {status}: {info.get('error-desc', info)}")
            time.sleep(0.05)
    finally:
        for q in qmps:
            with contextlib.suppress(QemuError, OSError):
                q.call("quit")
            q.close()
        for proc in procs:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=5)
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=5)
        for path in (src_qmp, dst_qmp):
            path.unlink(missing_ok=True)
