"""libiscsi's tools as the software iSCSI initiator of a host, bound to one adapter.

Each call runs in the stack namespace of a bound VMkernel adapter with
`LIBISCSI_BIND_INTERFACES=<its interface>` (SO_BINDTODEVICE), so the TCP
connection of a session leaves by exactly that adapter and its uplink, as a
bound vmknic's sessions do on ESXi. The output parsers are pure.

    targets = discover(ns, "vmk2", initiator, "198.18.30.100:3260")
    size = capacity(ns, "vmk2", initiator, portal, iqn, 1)     # also the login test
"""

from __future__ import annotations

import os
import re
import subprocess
from dataclasses import dataclass, field

from ..errors import DataplaneError, NotFound

ISCSI_PORT = 3260
DISCOVERY_TIMEOUT = 5.0
LOGIN_TIMEOUT = 3.0  # s a path's login test may take before the path counts as dead
_TARGET = re.compile(r"^Target:(?P<iqn>\S+)\s+Portal:(?P<portal>\S+?)(?:,(?P<tpg>\d+))?$")
_LUN = re.compile(r"^Lun:(?P<lun>\d+)\s+Type:(?P<type>\S+)(?:\s+\(Size:(?P<size>[^)]*)\))?$")
_TOTAL = re.compile(r"^Total size:(\d+)$", re.MULTILINE)
_BLOCK = re.compile(r"^LOGICAL BLOCK LENGTH IN BYTES:(\d+)$", re.MULTILINE)


@dataclass(frozen=True, slots=True)
class FoundLun:
    lun: int
    type: str  # SCSI peripheral type as libiscsi names it: DIRECT_ACCESS, ...


@dataclass(frozen=True, slots=True)
class FoundTarget:
    iqn: str
    portal: str  # address:port the target answered on
    tpgt: int
    luns: tuple[FoundLun, ...] = field(default=())


def parse_ls(text: str) -> list[FoundTarget]:
    """`iscsi-ls -s` output -> targets with their LUNs, in the order printed."""
    out: list[FoundTarget] = []
    current: tuple[str, str, int] | None = None
    luns: list[FoundLun] = []
    for raw in text.splitlines():
        line = raw.strip()
        target = _TARGET.match(line)
        if target is not None:
            if current is not None:
                out.append(FoundTarget(*current, tuple(luns)))
            current = (target["iqn"], target["portal"], int(target["tpg"] or 1))
            luns = []
            continue
        lun = _LUN.match(line)
        if lun is not None and current is not None:
            luns.append(FoundLun(int(lun["lun"]), lun["type"]))
    if current is not None:
        out.append(FoundTarget(*current, tuple(luns)))
    return out


def parse_capacity(text: str) -> tuple[int, int]:
    """`iscsi-readcapacity16` output -> (bytes, block size)."""
    total, block = _TOTAL.search(text), _BLOCK.search(text)
    if total is None or block is None:
        raise ValueError("no 'Total size' or block length in iscsi-readcapacity16 output")
    return int(total.group(1)), int(block.group(1))


def portal_url(portal: str, iqn: str | None = None, lun: int | None = None) -> str:
    """iscsi://portal[/iqn/lun], the URL form libiscsi's tools take."""
    url = f"iscsi://{portal}"
    if iqn is not None:
        url += f"/{iqn}/{0 if lun is None else lun}"
    return url


def command(ns: str, tool: str, *args: str) -> list[str]:
    """The argv running `tool` in namespace `ns` (the binding goes in the environment)."""
    return ["ip", "netns", "exec", ns, tool, *args]


def environment(ifname: str | None) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("LIBISCSI_BIND_INTERFACES", None)
    if ifname is not None:
        env["LIBISCSI_BIND_INTERFACES"] = ifname
    return env


def run(ns: str, ifname: str | None, tool: str, *args: str, timeout: float
        ) -> subprocess.CompletedProcess[str]:
    """Run one libiscsi tool bound to `ifname`; a missing tool or a timeout is one error line."""
    try:
        return subprocess.run(command(ns, tool, *args), env=environment(ifname),
                              capture_output=True, text=True, timeout=timeout, check=False)
    except FileNotFoundError:
        raise NotFound(f"{tool} is not installed: run scripts/setup.sh (Debian package "
                       "libiscsi-bin)", code="NotFound") from None
    except subprocess.TimeoutExpired:
        raise DataplaneError(f"{tool} from {ns} via {ifname or 'any adapter'}: no answer "
                             f"within {timeout:.0f} s", code="DataplaneError", ns=ns) from None


def discover(ns: str, ifname: str | None, initiator: str, portal: str,
             timeout: float = DISCOVERY_TIMEOUT) -> list[FoundTarget]:
    """SendTargets discovery and a LUN report through one adapter (`iscsi-ls -s`)."""
    done = run(ns, ifname, "iscsi-ls", "-s", "-i", initiator, portal_url(portal),
               timeout=timeout)
    if done.returncode != 0:
        why = (done.stderr or done.stdout).strip().splitlines()
        raise DataplaneError(f"Discovery at {portal} via {ifname or 'any adapter'} failed: "
                             f"{why[-1] if why else done.returncode}", code="DataplaneError",
                             portal=portal)
    return parse_ls(done.stdout)


def capacity_argv(initiator: str, portal: str, iqn: str, lun: int) -> list[str]:
    return ["iscsi-readcapacity16", "-i", initiator, portal_url(portal, iqn, lun)]


def capacity(ns: str, ifname: str | None, initiator: str, portal: str, iqn: str, lun: int,
             timeout: float = LOGIN_TIMEOUT) -> tuple[int, int] | None:
    """(bytes, block size) of one LUN after a full login through one adapter; None if it fails.

    This is the path's login test: a TCP connect, an iSCSI login and a SCSI
    command round trip over exactly this adapter.
    """
    argv = capacity_argv(initiator, portal, iqn, lun)
    try:
        done = run(ns, ifname, argv[0], *argv[1:], timeout=timeout)
    except DataplaneError:
        return None
    if done.returncode != 0:
        return None
    try:
        return parse_capacity(done.stdout)
    except ValueError:
        return None


def read_load(ns: str, ifname: str | None, initiator: str, portal: str, iqn: str, lun: int,
              seconds: int) -> subprocess.CompletedProcess[str]:
    """`iscsi-perf` reads for `seconds` through one adapter: bytes that move, measurable."""
    return run(ns, ifname, "iscsi-perf", "-i", initiator, "-t", str(seconds),
               portal_url(portal, iqn, lun), timeout=seconds + 10.0)
