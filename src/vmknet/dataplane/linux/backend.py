"""`LinuxBackend`: the `Backend` protocol on the running kernel (pyroute2 netlink)."""

from __future__ import annotations

import contextlib
import errno
import os
import shutil

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
from ..kstate import KernelState
from . import caps, links, netns, nft, resolver, routes, sysctl, tc
from .errors import translate, translating
from .read import read_state

LAB_PREFIX = "vmkl-"


def _check_prefix(prefix: str) -> None:
    if not prefix.startswith(LAB_PREFIX) or len(prefix) <= len(LAB_PREFIX):
        raise DataplaneError(f"refusing prefix {prefix!r}: lab namespaces start with "
                             f"{LAB_PREFIX!r} and a lab name", code="DataplaneError", errno=None)


class LinuxBackend:
    """Realise kernel ops with netlink; every failure is a `DataplaneError` and is undone."""

    name = "linux"

    def read(self, prefix: str) -> KernelState:
        with translating(f"read {prefix}*", "read"):
            return read_state(prefix)

    def execute(self, op: KernelOp) -> None:
        with translate(op):
            _dispatch(op)

    @staticmethod
    def capabilities() -> caps.Capabilities:
        """The VLAN and teaming mechanisms in use vs. what this kernel allows (probed once)."""
        with translating("probe kernel capabilities", "capabilities"):
            return caps.detect()

    def cleanup(self, prefix: str) -> list[str]:
        """Remove every namespace named `prefix`* and its /etc/netns dir (`lab down` after a crash).

        Deleting a namespace deletes its links; a veth whose other end is in a
        removed namespace goes with it. Returns the namespaces removed.
        """
        _check_prefix(prefix)
        removed = []
        with translating(f"cleanup {prefix}*", "cleanup"):
            for ns in netns.listed(prefix):
                try:
                    netns.remove(ns)
                except FileNotFoundError:
                    continue  # raced with another remover
                except OSError as exc:
                    if exc.errno not in (errno.ENOENT, errno.EINVAL):
                        raise
                removed.append(ns)
            if os.path.isdir(netns.ETC_NETNS):
                for entry in os.listdir(netns.ETC_NETNS):
                    if entry.startswith(prefix):
                        with contextlib.suppress(FileNotFoundError):
                            shutil.rmtree(os.path.join(netns.ETC_NETNS, entry))
        return removed


def _dispatch(op: KernelOp) -> None:
    match op:
        case CreateNamespace(ns):
            netns.create(ns)
        case DeleteNamespace(ns):
            netns.remove(ns)
        case AddLink():
            links.add(op)
        case DeleteLink():
            links.delete(op)
        case ModifyLink():
            links.modify(op)
        case AddAddress():
            routes.add_address(op)
        case DeleteAddress():
            routes.delete_address(op)
        case AddRoute():
            routes.add_route(op)
        case DeleteRoute():
            routes.delete_route(op)
        case AddRule():
            routes.add_rule(op)
        case DeleteRule():
            routes.delete_rule(op)
        case SetSysctl():
            sysctl.set_sysctl(op)
        case SetQdisc():
            tc.set_qdisc(op)
        case SetResolver():
            resolver.set_resolver(op)
        case SetFilter():
            nft.set_filter(op)
