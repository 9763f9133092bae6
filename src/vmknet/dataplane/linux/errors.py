"""The one place where kernel errors become `DataplaneError`.

`translate(op)` wraps each `execute`: a netlink error, an `OSError` (missing
namespace, /proc/sys write) or a failed `tc` command becomes
``DataplaneError("<Op> <object>: <reason>", code="DataplaneError", errno=..)``.
"""

from __future__ import annotations

import errno as errno_mod
import os
import struct
import subprocess
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager

from ...errors import DataplaneError
from ..kops import (
    AddAddress,
    AddLink,
    AddRoute,
    AddRule,
    CreateNamespace,
    DeleteAddress,
    DeleteLink,
    DeleteNamespace,
    DeleteRoute,
    DeleteRule,
    KernelOp,
    ModifyLink,
    SetFilter,
    SetQdisc,
    SetResolver,
    SetSysctl,
)
from .nl import NetlinkError, netlink_error_code


def describe(op: KernelOp) -> str:
    """`<OpName> <the object it touches>`, e.g. ``AddLink vmkl-a.h1/vmk0 (veth)``."""
    kind = type(op).__name__
    match op:
        case CreateNamespace(ns) | DeleteNamespace(ns):
            what = f"namespace {ns}"
        case AddLink(link, peer) | DeleteLink(link, peer):
            what = f"{link.ns}/{link.name} ({link.kind})"
            if peer is not None:
                what += f" peer {peer.ns}/{peer.name}"
        case ModifyLink(_, after):
            what = f"{after.ns}/{after.name} ({after.kind})"
        case AddAddress(a) | DeleteAddress(a):
            what = f"{a.ns}/{a.ifname} {a.cidr}"
        case AddRoute(r) | DeleteRoute(r):
            via = f" via {r.gateway}" if r.gateway else ""
            dev = f" dev {r.dev}" if r.dev else ""
            what = f"{r.ns} {r.dst}{via}{dev} table {r.table}"
        case AddRule(r) | DeleteRule(r):
            what = f"{r.ns} priority {r.priority} from {r.src} table {r.table}"
        case SetSysctl(ns, key, _, after):
            what = f"{ns} {key}={after}"
        case SetQdisc(ns, ifname, _, after):
            what = f"{ns}/{ifname} " + (f"tbf {after.rate_mbit} Mbit/s" if after else "(remove)")
        case SetResolver(ns, _, after):
            what = f"{ns} resolv.conf" + ("" if after else " (remove)")
        case SetFilter(ns, _, after):
            what = f"{ns} nftables" + ("" if after else " (flush)")
    return f"{kind} {what}"


def _reason(exc: BaseException) -> tuple[str, int | None]:
    if isinstance(exc, subprocess.CalledProcessError):
        out = exc.stderr.decode(errors="replace").strip() if isinstance(exc.stderr, bytes) else ""
        return (out or f"command failed: {exc.cmd}", None)
    code = netlink_error_code(exc) if isinstance(exc, NetlinkError) else None
    if isinstance(exc, OSError):
        code = exc.errno
    if code is not None and code > 0:
        name = errno_mod.errorcode.get(code, str(code))
        return (f"{os.strerror(code)} ({name})", code)
    return (str(exc) or type(exc).__name__, code)


@contextmanager
def translating(what: str, op_name: str) -> Iterator[None]:
    """Re-raise kernel errors as `DataplaneError("<what>: <reason>")`: the one translation."""
    try:
        yield
    except DataplaneError:
        raise
    except (NetlinkError, OSError, subprocess.CalledProcessError, ValueError,
            struct.error) as exc:
        reason, code = _reason(exc)
        raise DataplaneError(f"{what}: {reason}", code="DataplaneError",
                             errno=code, op=op_name) from exc


def translate(op: KernelOp) -> AbstractContextManager[None]:
    """`translating` for one kernel op, naming the op and its object."""
    return translating(describe(op), type(op).__name__)


def refuse(op: KernelOp, reason: str) -> DataplaneError:
    """An op the backend cannot carry out (not a kernel error, same error type)."""
    return DataplaneError(f"{describe(op)}: {reason}", code="DataplaneError", errno=None,
                          op=type(op).__name__)
