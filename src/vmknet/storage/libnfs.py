"""libnfs's tools (`libnfs-utils`: nfs-ls, nfs-cp, nfs-cat) in a host's stack namespace.

The client runs in the namespace of the VMkernel adapter that reaches the
server and is bound to its interface (libnfs's `if=` URL option,
SO_BINDTODEVICE), so an NFS datastore's bytes leave by that adapter.
libnfs 4.0.0 (Debian 12) speaks NFS 3 (through the server's portmapper) and
NFS 4.0 (SETCLIENTID); it has no NFS 4.1 (no sessions, no trunking).
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from urllib.parse import quote

from ..errors import DataplaneError, NotFound

TIMEOUT = 10.0  # s for one tool run: a dead server fails within it


def url(server: str, share: str, path: str = "", version: str = "3",
        ifname: str | None = None) -> str:
    """`nfs://server/share/path?version=3&if=vmk4` (libnfs's URL form)."""
    host = f"[{server}]" if ":" in server else server
    tail = "/".join(p for p in (share.strip("/"), path.strip("/")) if p)
    query = f"version={'4' if version.startswith('4') else '3'}"
    if ifname is not None:
        query += f"&if={ifname}"
    return f"nfs://{host}/{quote(tail)}?{query}"


def _run(ns: str, args: list[str], timeout: float = TIMEOUT) -> subprocess.CompletedProcess[str]:
    if shutil.which(args[0]) is None:
        raise NotFound(f"{args[0]} is not installed: run scripts/setup.sh (Debian package "
                       "libnfs-utils)", code="NotFound")
    try:
        return subprocess.run(["ip", "netns", "exec", ns, *args], capture_output=True,
                              text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        return subprocess.CompletedProcess(args, 124, "", f"no answer within {timeout:.0f} s")


def _why(done: subprocess.CompletedProcess[str]) -> str:
    lines = (done.stderr or done.stdout).strip().splitlines()
    return lines[-1][:200] if lines else f"exit status {done.returncode}"


def check(ns: str, server: str, share: str, version: str, ifname: str | None,
          timeout: float = TIMEOUT) -> str | None:
    """Mount test (`nfs-ls` of the share's root): None when it works, else why not."""
    done = _run(ns, ["nfs-ls", url(server, share, "", version, ifname)], timeout)
    return None if done.returncode == 0 else _why(done)


def put(ns: str, local: Path, server: str, share: str, path: str, version: str,
        ifname: str | None) -> None:
    """Copy `local` to `path` on the share (nfs-cp)."""
    done = _run(ns, ["nfs-cp", str(local), url(server, share, path, version, ifname)])
    if done.returncode != 0:
        raise DataplaneError(f"nfs-cp to {server}:{share}/{path}: {_why(done)}",
                             code="DataplaneError", server=server)


def get(ns: str, server: str, share: str, path: str, version: str, ifname: str | None,
        local: Path) -> None:
    """Copy `path` on the share to `local` (nfs-cp)."""
    done = _run(ns, ["nfs-cp", url(server, share, path, version, ifname), str(local)])
    if done.returncode != 0:
        raise DataplaneError(f"nfs-cp from {server}:{share}/{path}: {_why(done)}",
                             code="DataplaneError", server=server)
