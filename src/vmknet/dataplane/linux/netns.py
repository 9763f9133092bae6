"""Network namespaces: create, remove, list, and run code inside one.

Entering a namespace (`setns(2)`) moves only the calling thread (LAB.md), so
`in_netns` runs its function in a fresh, short-lived thread that enters the
namespace, runs, and switches back; the caller's threads never move. A socket
created there stays in that namespace for its whole life, which is how
`netlink_fd` gives the backend an rtnetlink socket per namespace in well under a
millisecond (pyroute2's own `IPRoute(netns=...)` forks a helper process, ~10 ms).
"""

from __future__ import annotations

import ctypes
import errno
import os
import socket
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:
    from . import nl

T = TypeVar("T")
CLONE_NEWNET = 0x40000000
NETNS_DIR = "/run/netns"
ETC_NETNS = "/etc/netns"
_libc = ctypes.CDLL(None, use_errno=True)


def path(ns: str) -> str:
    return os.path.join(NETNS_DIR, ns)


def exists(ns: str) -> bool:
    return os.path.exists(path(ns))


def listed(prefix: str) -> list[str]:
    """Namespaces whose name starts with `prefix`, sorted."""
    from . import nl  # pyroute2, loaded on first use

    return sorted(n for n in nl.list_netns() if n.startswith(prefix))


def open_fd(ns: str) -> int:
    """An fd of the namespace (FileNotFoundError if it does not exist)."""
    return os.open(path(ns), os.O_RDONLY | os.O_CLOEXEC)


def _setns(fd: int) -> None:
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"setns: {os.strerror(err)}")


def in_netns(ns: str | int, fn: Callable[[], T]) -> T:
    """Run `fn` in a short-lived thread inside namespace `ns` (a name or an open fd)."""
    box: dict[str, object] = {}

    def run() -> None:
        home = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
        try:
            fd = open_fd(ns) if isinstance(ns, str) else ns
            try:
                _setns(fd)
            finally:
                if isinstance(ns, str):
                    os.close(fd)
            try:
                box["value"] = fn()
            finally:
                _setns(home)
        except BaseException as exc:  # handed to the caller's thread
            box["error"] = exc
        finally:
            os.close(home)

    worker = threading.Thread(target=run, name="vmknet-netns", daemon=True)
    worker.start()
    worker.join()
    if "error" in box:
        raise box["error"]  # type: ignore[misc]
    return box["value"]  # type: ignore[return-value]


def netlink_socket_here() -> int:
    """A new rtnetlink socket in the calling thread's namespace (its fd)."""
    return socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, socket.NETLINK_ROUTE).detach()


def netlink_fd(ns: str | int) -> int:
    """A new rtnetlink socket inside `ns`; the caller owns (and closes) the fd."""
    return in_netns(ns, netlink_socket_here)


def open_netlink(ns: str) -> nl.Netlink:
    from . import nl  # pyroute2, loaded on first use

    return nl.Netlink(netlink_fd(ns))


def create(ns: str) -> None:
    """A new namespace with `lo` up; removed again if any step fails.

    Made in a short-lived thread, not in a forked child as pyroute2's `create`
    does (~1 ms instead of ~10): the thread unshares its network namespace
    (which moves only that thread), bind-mounts it on /run/netns/<ns>, opens
    the rtnetlink socket that brings `lo` up, and switches back home.
    """
    from . import nl  # pyroute2, loaded on first use

    if exists(ns):
        raise FileExistsError(errno.EEXIST, f"namespace {ns} exists")

    made = False

    def make() -> int:
        nonlocal made
        if _libc.unshare(CLONE_NEWNET) != 0:
            err = ctypes.get_errno()
            raise OSError(err, f"unshare: {os.strerror(err)}")
        try:
            nl.attach_netns(ns, "thread-self")
        except FileExistsError:
            raise  # another creator won the race: its namespace, not ours to remove
        except BaseException:
            if exists(ns):
                remove(ns)  # the mount point was made, the bind mount failed
            raise
        made = True
        return netlink_socket_here()

    try:
        with os.fdopen(os.open("/proc/self/ns/net", os.O_RDONLY | os.O_CLOEXEC)) as home:
            fd = in_netns(home.fileno(), make)  # in_netns switches the thread back home
        with nl.Netlink(fd) as link:
            link.set_link("lo", state="up")
    except BaseException:
        if made and exists(ns):
            remove(ns)
        raise


def remove(ns: str) -> None:
    from . import nl  # pyroute2, loaded on first use

    if not exists(ns):
        raise FileNotFoundError(errno.ENOENT, f"no namespace {ns}")
    nl.remove_netns(ns)
    etc = os.path.join(ETC_NETNS, ns)
    if os.path.isdir(etc) and not os.listdir(etc):
        os.rmdir(etc)


def visit(fds: dict[str, int], fn: Callable[[], T]) -> dict[str, T]:
    """Run `fn` inside each namespace (name -> open fd), all from one helper thread."""

    def tour() -> dict[str, T]:
        out: dict[str, T] = {}
        for ns, fd in fds.items():
            _setns(fd)
            out[ns] = fn()
        return out

    with os.fdopen(os.open("/proc/self/ns/net", os.O_RDONLY | os.O_CLOEXEC)) as home:
        return in_netns(home.fileno(), tour)  # in_netns switches the thread back home


def enter(ns: str) -> None:
    """Move the calling thread into `ns` for good (a daemon's main thread, before it starts
    threads: each new thread starts in its creator's namespace)."""
    fd = open_fd(ns)
    try:
        _setns(fd)
    finally:
        os.close(fd)
