"""/etc/netns/<ns>/resolv.conf: a namespace's DNS (`ip netns exec` bind-mounts it on /etc)."""

from __future__ import annotations

import contextlib
import os

from ..kops import SetResolver
from ..kstate import Resolver
from . import netns
from .netns import ETC_NETNS

HEADER = "# written by vmknet; changes are overwritten\n"


def conf_path(ns: str) -> str:
    return os.path.join(ETC_NETNS, ns, "resolv.conf")


def render(resolver: Resolver) -> str:
    lines = [f"nameserver {s}\n" for s in resolver.servers]
    if resolver.search:
        lines.append("search " + " ".join(resolver.search) + "\n")
    return HEADER + "".join(lines)


def parse(ns: str, text: str) -> Resolver:
    servers: list[str] = []
    search: list[str] = []
    for line in text.splitlines():
        words = line.split()
        if len(words) >= 2 and words[0] == "nameserver":
            servers.append(words[1])
        elif words and words[0] in ("search", "domain"):
            search = words[1:]
    return Resolver(ns, tuple(servers), tuple(search))


def read(ns: str) -> Resolver | None:
    try:
        with open(conf_path(ns)) as f:
            return parse(ns, f.read())
    except FileNotFoundError:
        return None


def set_resolver(op: SetResolver) -> None:
    path = conf_path(op.ns)
    if op.after is None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
        with contextlib.suppress(OSError):
            os.rmdir(os.path.dirname(path))  # only if empty
        return
    if not netns.exists(op.ns):
        raise FileNotFoundError(2, f"no namespace {op.ns}")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(render(op.after))
    os.replace(tmp, path)  # atomic: a reader sees the old or the new file
