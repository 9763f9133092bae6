"""What may be started on a host from the wire: a fixed table of kinds and their arguments.

`process.start` carries `{kind, name, args}`; `command()` turns it into the
process's command line only after checking every argument against the
kind's schema (type, range, shape). Nothing of the request becomes argv that
the table did not name: the lab and the host come from the agent itself, the
module from the kind. An incoming VM (a vMotion's target) also names the
listeners it needs, `{stack, address}` of each adapter resolve() picked, and
their ports: those never become argv; the agent opens them in its own host's
stack namespaces (`sockets()`) and passes them to the process as fds.
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any

from ..errors import InvalidArgument
from ..model import names
from .records import MARKERS

NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
MAX_MEMORY = 64 << 30  # bytes of a VM's stand-in memory
MAX_RATE = 16 << 30  # bytes per second of its dirty rate
MAX_LISTENERS = 16  # addresses of one service on one host an incoming VM listens on
TICKET = re.compile(r"[0-9a-f]{32}")  # trust.tickets: ID_BYTES (16) in hex
SESSION = re.compile(r"[A-Za-z0-9_.-]{1,100}")  # an FT pair's arbiter key (ft.enable)
NAMESPACE = re.compile(r"vmkl-[A-Za-z0-9_.-]{1,200}")  # dataplane.naming's lab namespaces
FT_PORT = 8100  # FT logging (model.services SERVICE_PORTS)
VMOTION_PORT, CONTROL_PORT = 8000, 8001  # vMotion's streams; its control channel
MAX_RPO = 24 * 3600.0  # vSphere Replication's longest RPO


@dataclass(frozen=True)
class Arg:
    flag: str | None  # the command-line flag it becomes (--flag=value); None: not argv
    check: Callable[[Any], bool]
    why: str  # what a valid value is, for the refusal
    default: Any = None  # None: left out when not given (unless required)
    required: bool = False


def _int(lo: int, hi: int) -> Callable[[Any], bool]:
    return lambda v: isinstance(v, int) and not isinstance(v, bool) and lo <= v <= hi


def _abs_path(v: Any) -> bool:
    if not isinstance(v, str) or not 0 < len(v) <= 4096 or "\0" in v:
        return False
    p = PurePosixPath(v)
    return p.is_absolute() and ".." not in p.parts


def _ticket(v: Any) -> bool:
    return isinstance(v, str) and TICKET.fullmatch(v) is not None


def _session(v: Any) -> bool:
    return isinstance(v, str) and SESSION.fullmatch(v) is not None


def _ft_output(v: Any) -> bool:
    """An FT VM's output stream, as ft.enable.output_at makes it: JSON {ns, address, port,
    rate} of one of the lab's namespaces; the agent binds it in the VM, never a path."""
    try:
        out = json.loads(v) if isinstance(v, str) and len(v) <= 512 else None
    except ValueError:
        return False
    if not isinstance(out, dict) or set(out) != {"ns", "address", "port", "rate"}:
        return False
    return (isinstance(out["ns"], str) and NAMESPACE.fullmatch(out["ns"]) is not None
            and _endpoint({"stack": "defaultTcpipStack", "address": out["address"]})
            and _int(1, 65535)(out["port"])
            and isinstance(out["rate"], int | float) and not isinstance(out["rate"], bool)
            and 0 < out["rate"] <= 100_000)


def _endpoint(v: Any) -> bool:
    if not isinstance(v, dict) or set(v) != {"stack", "address"}:
        return False
    stack, address = v["stack"], v["address"]
    if not isinstance(stack, str) or names.NETSTACK.problem(stack) is not None:
        return False
    if not isinstance(address, str) or len(address) > 45:
        return False
    try:
        ipaddress.ip_address(address)
    except ValueError:
        return False
    return True


def _endpoints(v: Any) -> bool:
    return (isinstance(v, list) and 0 < len(v) <= MAX_LISTENERS
            and all(_endpoint(e) for e in v))


def _host(v: Any) -> bool:
    return isinstance(v, str) and names.HOST.problem(v) is None


def _datastore(v: Any) -> bool:
    return isinstance(v, str) and names.DATASTORE.problem(v) is None


def _rel_path(v: Any) -> bool:
    if not isinstance(v, str) or not 0 < len(v) <= 255 or "\0" in v:
        return False
    p = PurePosixPath(v)
    return not p.is_absolute() and ".." not in p.parts and all(
        names.DATASTORE.problem(part) is None for part in p.parts)


def _disk(v: Any) -> bool:
    """A VM's disk (vm.disk.DiskSpec as JSON): names and paths checked, nothing else."""
    try:
        d = json.loads(v) if isinstance(v, str) and len(v) <= 1024 else None
    except ValueError:
        return False
    if not isinstance(d, dict) or set(d) != {"datastore", "path", "size", "kind", "location",
                                             "owner"}:
        return False
    return (_datastore(d["datastore"]) and (d["path"] == "" or _rel_path(d["path"]))
            and _int(0, 1 << 50)(d["size"]) and d["kind"] in ("local", "iscsi", "nfs", "vsan")
            and (d["location"] == "" or _abs_path(d["location"]))
            and (d["owner"] == "" or _host(d["owner"])))


def _seconds(v: Any) -> bool:
    return (isinstance(v, int | float) and not isinstance(v, bool)
            and 0 < v <= MAX_RPO)


KEY = re.compile(r"[0-9a-f]{64}")  # vsan/config.py: KEY_BYTES (32) in hex
MAX_NODES = 64  # hosts of one vSAN cluster


def _json_list(item: Callable[[Any], bool], most: int) -> Callable[[Any], bool]:
    """A JSON text (it becomes one argv word) of a list of 1..most items each `item`."""
    def check(v: Any) -> bool:
        try:
            got = json.loads(v) if isinstance(v, str) and len(v) <= 64 * 1024 else None
        except ValueError:
            return False
        return isinstance(got, list) and 0 < len(got) <= most and all(item(x) for x in got)
    return check


def _vsan_peer(v: Any) -> bool:
    """host,stack,source,address,v|w: one entry of a vSAN node's unicast peer list."""
    parts = v.split(",") if isinstance(v, str) and len(v) <= 256 else []
    return (len(parts) == 5 and _host(parts[0]) and parts[4] in ("v", "w")
            and _endpoint({"stack": parts[1], "address": parts[2]})
            and _endpoint({"stack": parts[1], "address": parts[3]}))


def _hosts_csv(v: Any) -> bool:
    return (isinstance(v, str) and 0 < len(v) <= 64 * MAX_NODES
            and all(_host(h) for h in v.split(",")) and v.count(",") < MAX_NODES)


@dataclass(frozen=True)
class Sockets:
    """Listeners the agent opens for the process: which argument names them, which one
    their port, the flag that passes their fds."""

    arg: str
    port: str
    flag: str


@dataclass(frozen=True)
class Kind:
    head: tuple[str, ...]  # fixed arguments after the module
    args: dict[str, Arg]
    ready_fd: bool  # the process reports its pid on --ready-fd (else: its record appears)
    sockets: tuple[Sockets, ...] = ()
    name_flag: str = "name"  # the flag that carries the name (the host-named kinds: none)


@dataclass(frozen=True)
class Listen:
    """One listener to open: in the namespace of `stack` of the agent's own host."""

    flag: str  # the fds flag it is passed with
    stack: str
    address: str
    port: int


TABLE: dict[str, Kind] = {
    "vm": Kind(("run",), {
        "memory": Arg("memory", _int(1, MAX_MEMORY), f"bytes, 1 to {MAX_MEMORY}",
                      required=True),
        "dirtyRate": Arg("dirty-rate", _int(0, MAX_RATE), f"bytes/s, 0 to {MAX_RATE}", 0),
        "seed": Arg("seed", _int(0, 2**32 - 1), "an integer 0 to 2^32-1", 1),  # as the CLI
        "disk": Arg("disk", _disk, "a disk spec as JSON (vm.disk.DiskSpec)"),
        "diskRate": Arg("disk-rate", _int(0, 100_000), "disk writes per second, 0 to 100000"),
        "diskSeq": Arg("disk-seq", _int(0, 1 << 62), "the disk stream's position, 0 or more"),
    }, ready_fd=True),
    "nfc": Kind((), {
        "base": Arg("base", _abs_path, "an absolute path without '..'"),
        "port": Arg("port", _int(1, 65535), "a TCP port"),
    }, ready_fd=False),
    # A vMotion's target: the migration's ticket, and the adapters to listen on (the
    # streams on the vMotion adapters, the control channel on the management ones).
    "incoming": Kind(("incoming",), {
        "ticket": Arg("ticket", _ticket, "a vmotion ticket id (32 hex digits)",
                      required=True),
        "vmotion": Arg(None, _endpoints, f"1 to {MAX_LISTENERS} {{stack, address}}",
                       required=True),
        "management": Arg(None, _endpoints, f"1 to {MAX_LISTENERS} {{stack, address}}",
                          required=True),
        "vmotionPort": Arg(None, _int(1, 65535), "a TCP port", VMOTION_PORT),
        "controlPort": Arg(None, _int(1, 65535), "a TCP port", CONTROL_PORT),
    }, ready_fd=True, sockets=(Sockets("vmotion", "vmotionPort", "vm-fds"),
                               Sockets("management", "controlPort", "mgmt-fds"))),
    # An FT secondary: the pair's ft ticket, the guest it shadows, and the FT logging
    # adapters to listen on (ft/enable.py); it becomes the VM when it goes live (FT-2).
    "ft-secondary": Kind(("ft-secondary",), {
        "ticket": Arg("ticket", _ticket, "an ft ticket id (32 hex digits)", required=True),
        "memory": Arg("memory", _int(1, MAX_MEMORY), f"bytes, 1 to {MAX_MEMORY}",
                      required=True),
        "dirtyRate": Arg("dirty-rate", _int(0, MAX_RATE), f"bytes/s, 0 to {MAX_RATE}", 0),
        "seed": Arg("seed", _int(0, 2**32 - 1), "an integer 0 to 2^32-1", 1),
        "session": Arg("ft-session", _session, "letters, digits, '_', '.', '-' (1-100)",
                       required=True),
        "timeout": Arg("ft-timeout", lambda v: isinstance(v, int | float)
                       and not isinstance(v, bool) and 0.05 <= v <= 60,
                       "seconds, 0.05 to 60", 2.0),
        "verify": Arg("ft-verify", _int(0, 1), "0 or 1", 0),
        "output": Arg("ft-output", _ft_output, "JSON {ns, address, port, rate}"),
        "ftlog": Arg(None, _endpoints, f"1 to {MAX_LISTENERS} {{stack, address}}",
                     required=True),
        "ftPort": Arg(None, _int(1, 65535), "a TCP port", FT_PORT),
    }, ready_fd=True, sockets=(Sockets("ftlog", "ftPort", "vm-fds"),)),
    # vSphere Replication, a part per host (replication/endpoint.py, daemon.py `source`).
    "replication-server": Kind(("server",), {}, ready_fd=True),
    "replica-nfc": Kind(("replica",), {
        "base": Arg("base", _abs_path, "an absolute path without '..'", required=True),
    }, ready_fd=True),
    "replication": Kind(("source",), {
        "server": Arg("server", _host, "a host name", required=True),
        "target": Arg("target", _host, "a host name", required=True),
        "disk": Arg("disk", _abs_path, "an absolute path without '..'", required=True),
        "datastore": Arg("datastore", _datastore, "a datastore name", required=True),
        "path": Arg("path", _rel_path, "<vm>/<disk>, without '..'", required=True),
        "rpo": Arg("rpo", _seconds, f"seconds, above 0 up to {MAX_RPO:g}", required=True),
        "writeRate": Arg("write-rate", _int(0, MAX_RATE), f"bytes/s, 0 to {MAX_RATE}", 0),
        "verify": Arg("verify", _int(0, 1), "0 or 1", 0),
    }, ready_fd=True, name_flag="vm"),
    # A host's vSAN node (vsan/node.py): its cluster, unicast peer list (VSAN-1) and
    # settings as argv; the cluster key never: the agent keeps it in a 0600 file (VSAN-5);
    # its object I/O listeners on the vSAN adapters opened by the agent (SEC-2).
    "vsan": Kind((), {
        "cluster": Arg("cluster", lambda v: isinstance(v, str)
                       and names.CLUSTER.problem(v) is None, "a cluster name", required=True),
        "members": Arg("members", _hosts_csv, "host names, comma-separated", required=True),
        "peers": Arg("peers-json", _json_list(_vsan_peer, MAX_NODES),
                     "JSON list of host,stack,source,address,v|w", required=True),
        "listen": Arg("listen-json", _json_list(_endpoint, MAX_LISTENERS),
                      "JSON list of {stack, address}", required=True),
        "witnessHost": Arg("witness-host", _host, "a host name"),
        "capacity": Arg("capacity", _int(1 << 20, 1 << 40), "bytes, 1 MiB to 1 TiB",
                        required=True),
        "repairDelay": Arg("repair-delay", _seconds, f"seconds, above 0 up to {MAX_RPO:g}",
                           60.0),
        "key": Arg(None, lambda v: isinstance(v, str) and KEY.fullmatch(v) is not None,
                   "the cluster key (64 hex digits)", required=True),
        "io": Arg(None, _endpoints, f"1 to {MAX_LISTENERS} {{stack, address}}", required=True),
        "ioPort": Arg(None, _int(1, 65535), "a TCP port", 2233),
    }, ready_fd=True, sockets=(Sockets("io", "ioPort", "io-fds"),)),
}
# Kinds named after their host (one per host): the name must be the agent's host.
HOST_NAMED = ("nfc", "replication-server", "replica-nfc", "vsan")


def command(kind: Any, name: Any, args: Any, lab: str, host: str) -> tuple[str, list[str]]:
    """(module, arguments) for `kind`; InvalidArgument for anything outside the table."""
    spec = TABLE.get(kind) if isinstance(kind, str) else None
    if spec is None:
        raise InvalidArgument(f"Process kind {kind!r} cannot be started here (allowed: "
                              f"{', '.join(sorted(TABLE))})", kind=str(kind)[:32])
    if not isinstance(name, str) or not NAME.fullmatch(name):
        raise InvalidArgument(f"Process name {str(name)[:70]!r} is not a plain name "
                              "(letters, digits, '_', '.', '-', up to 64)")
    if kind in HOST_NAMED and name != host:
        raise InvalidArgument(f"The {kind} process of {host} is named {host}, not {name!r}")
    if not isinstance(args, dict):
        raise InvalidArgument("The arguments of a process are an object")
    unknown = sorted(str(k)[:32] for k in args if k not in spec.args)
    if unknown:
        raise InvalidArgument(f"Unknown arguments for a {kind} process: {', '.join(unknown)} "
                              f"(allowed: {', '.join(sorted(spec.args))})", kind=kind)
    out = [*spec.head, f"--lab={lab}",
           f"--{spec.name_flag}={name}" if kind not in HOST_NAMED else "", f"--host={host}"]
    for key, arg in spec.args.items():
        value = args.get(key, arg.default)
        if value is None:
            if arg.required:
                raise InvalidArgument(f"A {kind} process needs {key} ({arg.why})", kind=kind)
            continue
        if not arg.check(value):
            raise InvalidArgument(f"Argument {key} of a {kind} process: {arg.why}, not "
                                  f"{str(value)[:40]!r}", kind=kind, argument=key)
        if arg.flag is not None:
            out.append(f"--{arg.flag}={value}")
    return MARKERS[kind], [a for a in out if a]


def sockets(kind: str, args: dict[str, Any]) -> list[Listen]:
    """The listeners a `kind` process gets as fds; call after `command()` accepted args."""
    spec = TABLE[kind]
    out = []
    for group in spec.sockets:
        port = args.get(group.port, spec.args[group.port].default)
        out += [Listen(group.flag, e["stack"], e["address"], port) for e in args[group.arg]]
    return out
