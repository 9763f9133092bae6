"""A host's replication endpoint as a process of its own, the host agent's child.

    python -m vmknet.replication.endpoint server  --lab=L --host=vr01 [--store=DB]
    python -m vmknet.replication.endpoint replica --lab=L --host=esx04 --base=DIR [--store=DB]

vSphere's shape: the replication server is an appliance of its own (`server`: the
ReplicationServer, TCP 44046 on its management adapters, leg 2 out over NFC), the
target host receives the replica with its NFC service (`replica`: ReplicaNfc on its
vSphereReplicationNFC adapters, PATH-4), and the source agent runs on the VM's host
(`replication.daemon source`). In a lab with a controller, `replication configure`
asks each host's agent for its part (`process.start` kinds `replication-server`,
`replica-nfc`, `replication`), so every part is its host agent's child. One endpoint
per host serves every replication that goes through it; `replication stop` and
`recover` stop an endpoint no other replication uses (procs.py).

It tells its starter it is up on --ready-fd once it listens, and exits on SIGTERM or
when its host's namespace goes (`lab down`).
"""

from __future__ import annotations

import argparse
import signal
import threading
from pathlib import Path

from ..inventory import Inventory
from ..lab.registry import store_of
from ..mgmt import spawn
from ..nfc.files import Datastores
from ..traffic.place import stack_ns
from .server import ReplicationServer
from .state import state_dir
from .target import ReplicaNfc

POLL = 0.25
MODES = ("server", "replica")


def _parser() -> argparse.ArgumentParser:
    args = argparse.ArgumentParser(prog="python -m vmknet.replication.endpoint")
    args.add_argument("mode", choices=MODES)
    args.add_argument("--lab", required=True)
    args.add_argument("--host", required=True)
    args.add_argument("--store", help="the lab's inventory store (default: lab registry)")
    args.add_argument("--base", help="replica: the datastore base directory")
    args.add_argument("--ready-fd", type=int)
    return args


def main(argv: list[str] | None = None) -> int:
    o = _parser().parse_args(argv)
    path = Path(o.store) if o.store else store_of(o.lab)
    if path is None:
        raise SystemExit(f"no store for lab {o.lab}: give --store")
    if o.mode == "replica" and not o.base:
        raise SystemExit("a replica endpoint needs --base")
    dc = Inventory.open(path).read()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    part: ReplicationServer | ReplicaNfc = (
        ReplicationServer(dc, o.lab, o.host, state_dir(o.lab)) if o.mode == "server"
        else ReplicaNfc(dc, o.lab, o.host, Datastores(Path(o.base))))
    ns = Path("/run/netns") / stack_ns(o.lab, o.host, "defaultTcpipStack")
    part.start()
    try:
        print(f"replication {o.mode} endpoint of {o.host} up", flush=True)
        spawn.ready(o.ready_fd)
        while not stop.wait(POLL):
            if not ns.exists():
                break  # lab down removed the lab: go with it
        return 0
    finally:
        part.stop()


if __name__ == "__main__":
    raise SystemExit(main())
