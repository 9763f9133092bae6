"""The VM process: `python -m vmknet.vm.vmx run|incoming --lab=LAB --name=VM --host=HOST ...`.

It detaches itself (fork, new session: the command that started it may exit),
unless `--foreground` says its starter stays its parent (the host agent, which
supervises it: `vmknet.supervise`); it tells its starter its pid through
--ready-fd, then holds the guest and answers on its control socket until
stopped, killed, or migrated away. `--lab=` on the command line is the marker
`lab down` finds VM processes by (registry.vm_pids).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import socket
import sys
import threading
import time
import traceback
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import VmknetError
from ..mgmt import spawn
from . import registry
from .control import LineReader, Message, send_line
from .disk import DiskSpec
from .diskio import DEFAULT_RATE, DiskIo, context
from .guest import Guest
from .memory import GuestMemory, Workload

if TYPE_CHECKING:
    from ..ft.primary import Primary
    from ..ft.secondary import Secondary


class Vmx:
    def __init__(self, lab: str, name: str, host: str) -> None:
        self.lab, self.name, self.host = lab, name, host
        self.guest: Guest | None = None
        self.state = "booting"
        self.stop = threading.Event()
        self.migrating = threading.Lock()
        self.ft: Primary | None = None  # FT: this VM is a protected primary
        self.ft_secondary: Secondary | None = None  # FT: this process is a secondary
        self.control = str(registry.vms_dir(lab) / f"{name}.{os.getpid()}.sock")

    # ------------------------------------------------------------- registry

    def publish(self, guest: Guest) -> None:
        """This process runs the VM now: write its record (boot, or a verified migration)."""
        self.guest, self.host, self.state = guest, guest.host, "running"
        registry.save(registry.VmRecord(self.name, self.lab, guest.host, os.getpid(),
                                        guest.memory.size, guest.workload.rate, self.control,
                                        time.time(),
                                        guest.disk.spec.to_dict() if guest.disk else None))

    # --------------------------------------------------------------- control

    def serve(self) -> None:
        path = Path(self.control)
        path.parent.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        server.bind(self.control)
        os.chmod(self.control, 0o600)
        server.listen(16)
        server.settimeout(0.2)

        def loop() -> None:
            while not self.stop.is_set():
                try:
                    conn, _ = server.accept()
                except TimeoutError:
                    continue
                threading.Thread(target=self.handle, args=(conn,), daemon=True).start()
            server.close()
            with contextlib.suppress(FileNotFoundError):
                path.unlink()

        threading.Thread(target=loop, name="vmx-control", daemon=True).start()

    def handle(self, conn: socket.socket) -> None:
        with conn:
            conn.settimeout(None)
            reader = LineReader(conn)
            request = reader.read()
            if request is None:
                return
            try:
                self.dispatch(conn, request, reader.fds)
            except Exception as err:  # one bad request must not take the VM down
                traceback.print_exc()
                with contextlib.suppress(OSError):
                    send_line(conn, {"ok": False, "error": f"{type(err).__name__}: {err}"})

    def dispatch(self, conn: socket.socket, request: Message, fds: list[int]) -> None:
        cmd = request.get("cmd")
        if cmd == "status":
            send_line(conn, self.status())
        elif cmd == "digest":
            send_line(conn, {"ok": True, "digest": self.paused_digest()})
        elif cmd == "stop":
            send_line(conn, {"ok": True})
            self.stop.set()
        elif cmd == "migrate":
            self.migrate(conn, request, fds)
        elif cmd == "ft":
            self.ft_on(conn, request, fds)
        elif cmd == "ft-off":
            if self.ft is not None:
                self.ft.stop()
                self.ft = None
            send_line(conn, {"ok": True})
        else:
            send_line(conn, {"ok": False, "error": f"unknown command {cmd!r}"})

    def status(self) -> Message:
        g = self.guest
        return {"ok": True, "name": self.name, "lab": self.lab, "host": self.host,
                "pid": os.getpid(), "state": self.state,
                "memory": g.memory.size if g else None,
                "dirty_rate": g.workload.rate if g else None,
                "writes": g.workload.writes if g else 0,
                "throttle": g.workload.throttle if g else 1.0,
                "running": bool(g and g.workload.running), "seed": g.seed if g else None,
                "ft": (self.ft.stats() if self.ft else self.ft_secondary.stats()
                       if self.ft_secondary else None),
                "disk": g.disk.stats() if g and g.disk else None}

    def paused_digest(self) -> str:
        if self.guest is None:
            raise RuntimeError("no guest yet")
        with self.migrating:  # not during a migration: the digest would stun the guest
            self.guest.workload.pause()
            try:
                return self.guest.memory.digest()
            finally:
                self.guest.workload.resume()

    def migrate(self, conn: socket.socket, request: Message, fds: list[int]) -> None:
        from ..vmotion.source import migrate_out  # only a migrating VM loads the engine

        socks = [socket.socket(fileno=fd) for fd in fds]
        if self.guest is None or not self.migrating.acquire(blocking=False):
            for s in socks:
                s.close()
            send_line(conn, {"event": "error", "error": f"VM {self.name} is busy"})
            return
        try:
            self.state = "migrating"

            def emit(event: Message) -> None:
                with contextlib.suppress(OSError):
                    send_line(conn, event)

            report = migrate_out(self.guest, request["params"], socks[0], socks[1:], emit)
            if report.completed:
                self.state = "migrated"
                self.guest.workload.stop()
            else:
                self.state = "running"
            emit({"event": "report", "report": report.to_dict()})
            if report.completed:
                self.stop.set()  # the target runs it now: release the memory, exit
        finally:
            self.migrating.release()


    def ft_on(self, conn: socket.socket, request: Message, fds: list[int]) -> None:
        """Protect this VM: checkpoints to the secondary over the FT socket handed in."""
        from ..ft.primary import Primary  # only a protected VM loads the engine

        socks = [socket.socket(fileno=fd) for fd in fds]
        alone = self.ft is None or self.ft.state == "unprotected"  # a primary that won a
        # link-only split runs alone: it may be protected again (re-protection)
        if self.guest is None or not alone or len(socks) != 1:
            for s in socks:
                s.close()
            send_line(conn, {"ok": False, "error": f"VM {self.name} cannot be protected now"})
            return

        def lost() -> None:  # the secondary went live: this copy must not run on
            self.state = "stood-down"
            self.stop.set()

        live = self.ft.output if self.ft else (  # re-protection: the output this process
            self.ft_secondary.output if self.ft_secondary else None)  # serves stays
        self.ft = Primary(self.guest, socks[0], request["params"], lost, live)
        self.ft.start()
        send_line(conn, {"ok": True})


# ------------------------------------------------------------------ main


def _args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="vmknet.vm.vmx")
    p.add_argument("mode", choices=("run", "incoming", "ft-secondary"))
    p.add_argument("--lab", required=True)
    p.add_argument("--name", required=True)
    p.add_argument("--host", required=True)
    p.add_argument("--memory", type=int, default=0)
    p.add_argument("--dirty-rate", type=int, default=0)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--disk", default="", help="run: the virtual disk, a DiskSpec as JSON")
    p.add_argument("--disk-rate", type=float, default=DEFAULT_RATE,
                   help="run: disk writes per second, each read back and verified")
    p.add_argument("--disk-seq", type=int, default=0,
                   help="run: the disk stream's position (its last write is read back first)")
    p.add_argument("--ready-fd", type=int, required=True)
    p.add_argument("--foreground", action="store_true",
                   help="stay the starter's child (it leads a session for us already)")
    p.add_argument("--mgmt-fds", default="")
    p.add_argument("--vm-fds", default="")
    p.add_argument("--ticket", default="", help="incoming: the migration's ticket id (SEC-4)")
    p.add_argument("--ft-session", default="", help="ft-secondary: the arbiter's key (FT-2)")
    p.add_argument("--ft-timeout", type=float, default=2.0,
                   help="ft-secondary: seconds without a checkpoint that mean the link is lost")
    p.add_argument("--ft-output", default="",
                   help="ft-secondary: JSON {ns, address, port, rate} of the VM's output")
    p.add_argument("--ft-verify", type=int, choices=(0, 1), default=0,
                   help="ft-secondary: hash the memory it goes live from (tests)")
    return p.parse_args(argv)


def _fds(text: str) -> list[socket.socket]:
    return [socket.socket(fileno=int(fd)) for fd in text.split(",") if fd]


def main(argv: list[str]) -> int:
    args = _args(argv)
    if not args.foreground:
        spawn.detach()  # the starter reaps this parent at once, init adopts the VM
    vmx = Vmx(args.lab, args.name, args.host)
    signal.signal(signal.SIGTERM, lambda *_: vmx.stop.set())
    vmx.serve()
    try:
        return _run(args, vmx)
    finally:
        vmx.stop.set()
        if vmx.guest is not None and vmx.guest.disk is not None:
            with contextlib.suppress(Exception):  # exiting: a dead path must not hang us
                vmx.guest.disk.close()
        time.sleep(0.3)  # the control loop closes and unlinks its socket
        with contextlib.suppress(FileNotFoundError):
            os.unlink(vmx.control)


def _run(args: argparse.Namespace, vmx: Vmx) -> int:
    if args.mode == "run":
        memory = GuestMemory(args.memory)
        load = Workload(memory, args.dirty_rate, args.seed)
        load.populate()
        guest = Guest(args.name, args.lab, args.host, args.seed, memory, load)
        if args.disk:
            guest.disk = _boot_disk(args, load)
            if guest.disk is None:
                return 1
            guest.disk.start()
        load.start()
        vmx.publish(guest)
        spawn.ready(args.ready_fd)
    elif args.mode == "ft-secondary":
        if not _ft_secondary(args, vmx):
            return 0  # stood down or `ft off`: the primary runs the VM
    else:
        from ..vmotion.target import migrate_in

        vmx.state = "incoming"
        spawn.ready(args.ready_fd)
        try:
            got = migrate_in(args.name, args.lab, args.host, _fds(args.mgmt_fds),
                             _fds(args.vm_fds), args.ticket, vmx.publish)
        except (OSError, ValueError, KeyError):
            traceback.print_exc()
            got = None
        if got is None:
            return 1  # aborted: the source keeps the VM
    while not vmx.stop.wait(1.0):
        pass
    if vmx.guest is not None and vmx.state == "running":
        vmx.guest.workload.stop()
        registry.remove(args.lab, args.name, pid=os.getpid())
    return 0


def _boot_disk(args: argparse.Namespace, load: Workload) -> DiskIo | None:
    """The VM's disk, opened before the VM reports ready: a boot fails in one line."""
    try:
        spec = DiskSpec.from_dict(json.loads(args.disk))
        io = DiskIo(spec, context(args.lab, args.host), load, args.disk_rate, args.seed,
                    args.disk_seq)
        io.open()
    except (VmknetError, OSError, ValueError) as err:
        print(f"Error: the disk cannot be opened: {err}", file=sys.stderr, flush=True)
        return None
    return io


def _ft_secondary(args: argparse.Namespace, vmx: Vmx) -> bool:
    from ..ft.secondary import Secondary

    memory = GuestMemory(args.memory)
    guest = Guest(args.name, args.lab, args.host, args.seed, memory,
                  Workload(memory, args.dirty_rate, args.seed))
    vmx.state = "secondary"
    vmx.ft_secondary = Secondary(guest, args.ft_session, args.ft_timeout, bool(args.ft_verify),
                                 json.loads(args.ft_output) if args.ft_output else None)
    spawn.ready(args.ready_fd)
    try:
        return vmx.ft_secondary.run(_fds(args.vm_fds), args.ticket, vmx.publish)
    except (OSError, ValueError, KeyError):
        traceback.print_exc()
        return False


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
