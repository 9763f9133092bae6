"""`vmknet-agent`: the host agent on a real Linux host (run by systemd, deploy/systemd/).

    vmknet-agent join --controller ADDR[:PORT] --token TOKEN --ca-fingerprint SHA256
                      [--state-dir DIR] [--host NAME] [--netns NS] [--source ADDR] [--force]
    vmknet-agent run [--state-dir DIR] [--netns NS]

`join` runs once, as root, with the token `vmknet host join-token HOST` gave
out on the controller's machine: a fresh key, the controller checked against
the CA fingerprint, the certificate and the host's management links written
root-only into the state directory. `run` is the service: in the foreground,
logging to stderr (the journal), telling systemd when it is ready
(Type=notify), stopping cleanly on SIGTERM. It is the same `Agent` the lab
runs; only where it keeps its files and how it is started differ.

The state directory (default /var/lib/vmknet/agent, mode 0700):

    agent.json   host name and controller address, from the join
    cert.pem     the host's certificate (management addresses as SANs)
    key.pem      its private key (0600; never leaves the host)
    ca.pem       the controller's CA
    links.json   the management links (address, vmk) the controller named
    tickets/     engine tickets the controller delivered (SEC-4)
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import socket
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

from ..dataplane.linux import netns
from ..errors import AlreadyExists, InvalidArgument, NotFound, VmknetError, exit_code, one_line
from ..errors import translate as translate_error
from ..mgmt.paths import MGMT_PORT
from ..trust.tickets import TicketBook
from . import boot
from .service import Agent, ControllerAddress

DEFAULT_STATE_DIR = Path("/var/lib/vmknet/agent")
IDENTITY = "agent.json"
log = logging.getLogger("vmknet-agent")


def short_hostname() -> str:
    return socket.gethostname().split(".", 1)[0]


@dataclass(frozen=True)
class StateDir:
    """Where a real host's agent keeps what it must remember across restarts."""

    root: Path

    @property
    def identity(self) -> Path:
        return self.root / IDENTITY

    @property
    def key(self) -> Path:
        return self.root / "key.pem"

    @property
    def tickets(self) -> Path:
        return self.root / "tickets"

    @property
    def joined(self) -> bool:
        return self.identity.exists() and (self.root / "cert.pem").exists()

    def prepare(self) -> None:
        """The folder exists and is root's alone, even if it existed before with a wider mode."""
        self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.chmod(self.root, 0o700)

    def save_identity(self, host: str, controller: ControllerAddress) -> None:
        tmp = self.root / f".{IDENTITY}.{os.getpid()}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump({"host": host, "controller": format_address(controller)}, f)
        tmp.replace(self.identity)

    def load_identity(self) -> tuple[str, ControllerAddress]:
        try:
            data = json.loads(self.identity.read_text(encoding="utf-8"))
            return str(data["host"]), ControllerAddress.parse(str(data["controller"]))
        except FileNotFoundError:
            raise NotFound(f"This host has not joined a controller ({self.identity} is "
                           "missing): run 'vmknet-agent join' first") from None
        except (OSError, ValueError, KeyError, TypeError) as err:
            raise InvalidArgument(f"{self.identity} is unreadable ({err}): join again with "
                                  "'vmknet-agent join --force'") from err

    def agent(self, host: str, controller: ControllerAddress) -> Agent:
        return Agent(host, self.root, controller, TicketBook(self.tickets))


def format_address(address: ControllerAddress) -> str:
    return address.host if address.port == MGMT_PORT else f"{address.host}:{address.port}"


def parse_controller(text: str) -> ControllerAddress:
    try:
        address = ControllerAddress.parse(text)
    except ValueError:
        raise InvalidArgument(f"--controller {text!r}: expected ADDRESS[:PORT]") from None
    if not address.host or not 0 < address.port < 65536:
        raise InvalidArgument(f"--controller {text!r}: expected ADDRESS[:PORT]")
    return address


# -- the command line ---------------------------------------------------------------------


class _Parser(argparse.ArgumentParser):
    """Usage errors as one coded line, like every other vmknet error (exit 2)."""

    def error(self, message: str) -> NoReturn:
        raise InvalidArgument(f"{message} (see '{self.prog} --help')")


def parser() -> argparse.ArgumentParser:
    p = _Parser(prog="vmknet-agent", description="The vmknet host agent on a real Linux host.")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)
    state_help = f"where the credential and state live (default {DEFAULT_STATE_DIR})"
    netns_help = "enter this network namespace first (the management stack's, if not the " \
                 "default one)"

    j = sub.add_parser("join", help="join a controller once, with a one-time token")
    j.add_argument("--controller", required=True, type=parse_controller,
                   help=f"ADDRESS[:PORT] of the controller (port {MGMT_PORT} by default)")
    j.add_argument("--token", required=True, help="from 'vmknet host join-token HOST'")
    j.add_argument("--ca-fingerprint", required=True, type=_fingerprint,
                   help="sha256 of the controller's CA, printed with the token")
    j.add_argument("--state-dir", type=Path, default=DEFAULT_STATE_DIR, help=state_help)
    j.add_argument("--host", default=None,
                   help="this host's name in the inventory (default: the short hostname)")
    j.add_argument("--netns", default=None, help=netns_help)
    j.add_argument("--source", default=None,
                   help="join from this management address (default: the kernel's choice)")
    j.add_argument("--force", action="store_true",
                   help="replace the credential of an earlier join (a new token is needed)")

    r = sub.add_parser("run", help="run the agent in the foreground (systemd's ExecStart)")
    r.add_argument("--state-dir", type=Path, default=DEFAULT_STATE_DIR, help=state_help)
    r.add_argument("--netns", default=None, help=netns_help)
    return p


def _fingerprint(text: str) -> str:
    value = text.strip().lower().replace(":", "")
    if len(value) != 64 or any(c not in "0123456789abcdef" for c in value):
        raise InvalidArgument("--ca-fingerprint: expected the 64 hex digits of a sha256")
    return value


def parse(argv: Sequence[str] | None = None) -> argparse.Namespace:
    args = parser().parse_args(argv)
    if args.command == "join" and args.host is None:
        args.host = short_hostname()
    return args


# -- join -------------------------------------------------------------------------------------


def join(args: argparse.Namespace) -> int:
    state = StateDir(args.state_dir)
    if state.joined and not args.force:
        host, controller = state.load_identity()
        raise AlreadyExists(f"{state.root} already holds the credential of {host} from "
                            f"{format_address(controller)}: 'vmknet-agent join --force' "
                            "replaces it (with a new token)")
    if args.netns:
        _enter(args.netns)
    state.prepare()
    agent = state.agent(args.host, args.controller)
    try:
        links = boot.join(agent, args.token, args.ca_fingerprint, args.source)
    except OSError as err:
        raise VmknetError(f"Cannot join the controller at {format_address(args.controller)}: "
                          f"{err.strerror or err}", code="HostNotConnected") from err
    state.save_identity(args.host, args.controller)
    names = ", ".join(f"{vmk} {address}" for address, vmk in links) or "none yet"
    print(f"Joined the controller at {format_address(args.controller)} as {args.host} "
          f"(management links: {names}); credential in {state.root}. Start the agent: "
          "systemctl enable --now vmknet-agent")
    return 0


# -- run --------------------------------------------------------------------------------------


class Notifier:
    """systemd's readiness protocol (sd_notify), without libsystemd.

    The socket is connected before the agent enters a network namespace: an abstract
    NOTIFY_SOCKET ("@...") belongs to the namespace it was made in.
    """

    def __init__(self, address: str | None = None) -> None:
        address = address if address is not None else os.environ.get("NOTIFY_SOCKET", "")
        self._sock: socket.socket | None = None
        if address:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
            try:
                sock.connect("\0" + address[1:] if address.startswith("@") else address)
            except OSError:
                sock.close()
                log.warning("cannot reach NOTIFY_SOCKET %s: readiness not reported", address)
                return
            self._sock = sock

    def notify(self, state: str) -> None:
        if self._sock is not None:
            try:
                self._sock.send(state.encode())
            except OSError as err:
                log.warning("sd_notify %s: %s", state, err.strerror)


def run(args: argparse.Namespace) -> int:
    logging.basicConfig(stream=sys.stderr, level=logging.INFO,
                        format="%(levelname)s %(name)s: %(message)s")
    state = StateDir(args.state_dir)
    host, controller = state.load_identity()
    links = boot.load_links(state.root)
    notifier = Notifier()
    if args.netns:
        _enter(args.netns)
    agent = state.agent(host, controller)
    names = ", ".join(f"{vmk} {address}" for address, vmk in links)
    last_error: list[str | None] = [None]

    def ready() -> None:
        log.info("%s: agent %d up; controller %s; management links %s", host, os.getpid(),
                 format_address(controller), names or "none")
        notifier.notify(f"READY=1\nMAINPID={os.getpid()}\nSTATUS=serving on {names}")

    def tick() -> None:
        if agent.error != last_error[0]:  # the agent's own trouble, as the controller sees it
            last_error[0] = agent.error
            if agent.error:
                log.error("%s", agent.error)

    boot.serve(agent, links, ready, tick)
    notifier.notify("STOPPING=1")
    log.info("%s: agent stopped", host)
    return 0


def _enter(ns: str) -> None:
    """Before any thread starts: each new thread starts in its creator's namespace."""
    try:
        netns.enter(ns)
    except OSError as err:
        raise NotFound(f"Network namespace {ns}: {err.strerror}") from err


# -- entry point ------------------------------------------------------------------------------

COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {"join": join, "run": run}


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = parse(argv)
        return COMMANDS[args.command](args)
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # every failure is one coded line, never a traceback
        err = translate_error(exc)
        print(f"Error [{err.code}]: {one_line(err.message, limit=2000)}", file=sys.stderr)
        return exit_code(err)


if __name__ == "__main__":
    raise SystemExit(main())
