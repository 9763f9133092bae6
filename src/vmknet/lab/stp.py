"""STP port states of the lab's bridges, to wait for convergence instead of sleeping blindly.

A new bridge port spends forward delay (2 s) listening and 2 s learning
before it forwards; existing ports keep forwarding when other ports join.
Read with iproute2's `bridge -j link` (JSON), one call per namespace.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterable

from ..errors import DataplaneError

SETTLING = frozenset({"listening", "learning"})
POLL_SECONDS = 0.1


def port_states(ns: str) -> dict[str, str]:
    """Bridge port -> STP state ("forwarding", "blocking", "disabled", ...) in namespace `ns`."""
    try:
        out = subprocess.run(["bridge", "-n", ns, "-j", "link", "show"], capture_output=True,
                             text=True, check=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError) as err:
        raise DataplaneError(f"cannot read the bridge ports of {ns}: {err}", ns=ns) from err
    return {p["ifname"]: p.get("state", "?") for p in json.loads(out or "[]")}


def settling(ports: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    """The (namespace, port) pairs that are still listening or learning."""
    by_ns: dict[str, set[str]] = {}
    for ns, port in ports:
        by_ns.setdefault(ns, set()).add(port)
    found = []
    for ns, names in sorted(by_ns.items()):
        states = port_states(ns)
        found += [(ns, p) for p in sorted(names) if states.get(p) in SETTLING]
    return found


def wait_converged(ports: Iterable[tuple[str, str]], timeout: float) -> float:
    """Seconds until no port in `ports` is listening or learning (at most `timeout`)."""
    wanted = list(ports)
    start = time.monotonic()
    while settling(wanted) and time.monotonic() - start < timeout:
        time.sleep(POLL_SECONDS)
    return time.monotonic() - start
