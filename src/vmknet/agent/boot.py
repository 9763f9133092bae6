"""Start-up shared by both ways of running a host agent.

The lab starts one per host with `python -m vmknet.agent` (`__main__.py`), a
real host runs `vmknet-agent` under systemd (`host.py`); both join once, keep
the management links the join reply named in `links.json` next to the
credential (the first heartbeat then keeps them current), and run until
SIGTERM, stopping the agent cleanly.
"""

from __future__ import annotations

import json
import signal
import threading
from collections.abc import Callable
from pathlib import Path

from ..errors import VmknetError
from ..supervise.records import write_json
from .service import Agent

LINKS = "links.json"
Links = list[tuple[str, str]]  # (address, vmk) of the host's management adapters


def join(agent: Agent, token: str, ca_fingerprint: str, source: str | None = None) -> Links:
    """Join with the one-time token; the credential and links.json land in agent.folder."""
    links = agent.join(token, ca_fingerprint, source)
    save_links(agent.folder, links)
    return links


def save_links(folder: Path, links: Links) -> None:
    write_json(folder / LINKS, [list(x) for x in links], mode=0o600)


def load_links(folder: Path) -> Links:
    path = folder / LINKS
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return [(str(a), str(v)) for a, v in data]
    except (OSError, ValueError, TypeError) as err:
        raise VmknetError(f"No management links in {path} ({err}): join again",
                          code="NotFound") from err


def serve(agent: Agent, links: Links, ready: Callable[[], None],
          tick: Callable[[], None] = lambda: None) -> None:
    """Start the agent, call `ready()`, run until SIGTERM or SIGINT, stop the agent.

    The wait wakes every second (`tick()`, e.g. to log a new agent error): a signal then
    never waits on a lock that cannot be interrupted.
    """
    agent.start(links)
    done = threading.Event()
    for signo in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signo, lambda *_: done.set())
    ready()
    while not done.wait(1.0):
        tick()
    agent.stop()
