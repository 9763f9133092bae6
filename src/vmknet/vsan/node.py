"""A host's vSAN node: membership (UDP 12321), object I/O (TCP 2233), resync; one per host.

    python -m vmknet.vsan.node --lab=L --host=esx01 --cluster=cl01 \
        --listen=defaultTcpipStack,198.18.50.11 \
        --peer=esx02,defaultTcpipStack,198.18.50.11,198.18.50.12,v ... \
        --members=esx01,esx02,esx03 [--witness-host=W] --capacity=BYTES \
        --repair-delay=S [--ready-fd=N]

Everything it needs comes on its command line from whoever plays the controller
(vmknet vsan start in a lab without one: procs.py): where it listens (its vSAN
adapters, and vsanWitness ones where a witness host takes part), its unicast peer
list (VSAN-1: every other node, never itself), the members and the settings. The
cluster key is the lab's key file (0600). It records its view in nodes/<host>.json
every TICK, reports ready on --ready-fd once it listens, and exits on SIGTERM or
when its host's namespace goes (lab down).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import socket
import threading
import time
from typing import Any

from ..errors import NotFound
from ..mgmt import spawn
from ..supervise.records import write_json
from ..traffic.place import stack_ns
from . import config, directory, paths
from .config import Route
from .disk import LocalDisk
from .membership import Membership
from .resync import Resyncer, gc
from .server import IoServer

TICK = 0.25
GC_EVERY = 5.0


def _parser() -> argparse.ArgumentParser:
    a = argparse.ArgumentParser(prog="python -m vmknet.vsan.node")
    for name in ("lab", "host", "cluster", "members"):
        a.add_argument(f"--{name}", required=True)
    a.add_argument("--listen", action="append", default=[], help="stack,address")
    a.add_argument("--peer", action="append", default=[], help="host,stack,source,address,v|w")
    # Started by the host's agent (kind vsan): the same, as JSON, and the TCP listeners it
    # opened, as fds.
    a.add_argument("--listen-json", dest="listen_json")
    a.add_argument("--peers-json", dest="peers_json")
    a.add_argument("--io-fds", dest="io_fds")
    a.add_argument("--witness-host", dest="witness_host")
    a.add_argument("--capacity", type=int, required=True)
    a.add_argument("--repair-delay", dest="repair_delay", type=float, required=True)
    a.add_argument("--ready-fd", dest="ready_fd", type=int)
    return a


def main(argv: list[str] | None = None) -> int:
    o = _parser().parse_args(argv)
    pairs = [(s, a) for s, a in (x.split(",", 1) for x in o.listen)]
    if o.listen_json:
        pairs += [(str(e["stack"]), str(e["address"])) for e in json.loads(o.listen_json)]
    peers = [Route.parse(p) for p in o.peer]
    if o.peers_json:
        peers += [Route.parse(p) for p in json.loads(o.peers_json)]
    if not pairs:
        raise SystemExit("a vSAN node needs --listen or --listen-json")
    opened = [socket.socket(fileno=int(fd)) for fd in o.io_fds.split(",")] if o.io_fds \
        else None
    if any(p.host == o.host for p in peers):
        raise SystemExit(f"VSAN-1: {o.host} is on its own peer list")
    members = [m for m in o.members.split(",") if m]
    key = config.load_key(o.lab, o.cluster)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    disk = LocalDisk(o.lab, o.host)
    server = IoServer(o.lab, o.host, o.cluster, key, disk, pairs).start(opened)
    hb = [config.Peer(p.host, p.source, p.address, p.witness) for p in peers]
    members_view = Membership(o.lab, o.cluster, o.host, key, hb, pairs).start()
    routes = {p.host: p for p in peers}
    routes[o.host] = Route(o.host, pairs[0][0], pairs[0][1], pairs[0][1])
    resync = Resyncer(o.lab, o.host, o.cluster, key, disk, server, members_view, routes,
                      members, o.capacity, o.repair_delay).start()
    ns = stack_ns(o.lab, o.host, pairs[0][0])
    started, last_gc = time.time(), 0.0
    state = {"host": o.host, "cluster": o.cluster, "lab": o.lab, "pid": os.getpid(),
             "started": started, "members": members, "witnessHost": o.witness_host,
             "capacity": o.capacity, "repairDelay": o.repair_delay,
             "uuid": _node_uuid(o.lab, o.host), "listen": [a for _, a in pairs],
             "peers": [p.arg() for p in peers]}
    print(f"vSAN node {o.host} of {o.cluster} up on {', '.join(a for _, a in pairs)}", flush=True)
    spawn.ready(o.ready_fd)
    try:
        while not stop.wait(TICK):
            if not os.path.exists(f"/run/netns/{ns}"):
                break  # lab down removed the lab: go with it
            _record(o.lab, o.host, state, members_view, resync, server)
            if time.monotonic() - last_gc > GC_EVERY:
                last_gc = time.monotonic()
                gc(disk, lambda u, c: _listed(o.lab, o.host, u, c))
        return 0
    finally:
        resync.stop()
        members_view.stop()
        server.stop()
        disk.close()
        with contextlib.suppress(OSError):
            paths.node_path(o.lab, o.host).unlink()


def _node_uuid(lab: str, host: str) -> str:
    import hashlib
    h = hashlib.sha256(f"{lab}/{host}/vsan-node".encode()).hexdigest()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:32]}"


def _listed(lab: str, host: str, uuid: str, comp: str) -> bool:
    try:
        meta = directory.load(lab, uuid)
    except NotFound:
        return False
    return any(c.id == comp and c.host == host for c in meta.components)


def _record(lab: str, host: str, state: dict[str, Any], m: Membership, r: Resyncer,
            s: IoServer) -> None:
    now = time.monotonic()
    roles = m.roles()
    part = m.partition()
    write_json(paths.node_path(lab, host), {
        **state, "updated": time.time(), "role": roles[host], "partition": part,
        "master": part[0], "backup": part[1] if len(part) > 1 else None,
        "heard": {h: round(now - t, 3) for h, t in sorted(m.heard.items())},
        "views": m.views, "dropped": m.dropped, "refused": s.refused,
        "resync": {"left": r.left(), "copied": r.progress.copied,
                   "seconds": round(r.progress.seconds, 3), "current": r.progress.current,
                   "errors": r.errors}}, indent=1)


if __name__ == "__main__":
    raise SystemExit(main())
