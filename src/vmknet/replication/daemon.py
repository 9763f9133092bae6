"""One replication as a lab process: server, target NFC endpoint and source agent in-process.

    python -m vmknet.replication.daemon --lab=L --vm=VM --store=DB --source=esx01 \
        --server=vr01 --target=esx04 --disk=FILE --datastore=ds1 --path=VM/DISK \
        --rpo=300 --base=DIR [--write-rate=N] [--verify]

Started detached by `vmknet replication configure`. It records itself in
replication/daemon-<vm>.json (state "starting", then "running" or "failed"), and
exits on SIGTERM, when that record goes, or when the source host's namespace does
(`lab down`). It saves the agent's state on the way out.
"""

from __future__ import annotations

import argparse
import os
import signal
import threading
import time
import traceback
from pathlib import Path

from ..inventory import Inventory
from ..nfc.files import Datastores
from ..supervise.records import read_json
from ..traffic.place import stack_ns
from .config import ReplicationConfig
from .procs import record_path
from .server import ReplicationServer
from .source import SourceAgent
from .state import save_json, state_dir
from .target import ReplicaNfc

POLL = 0.25


def _parser() -> argparse.ArgumentParser:
    args = argparse.ArgumentParser(prog="python -m vmknet.replication.daemon")
    for name in ("lab", "vm", "store", "source", "server", "target", "disk", "datastore",
                 "path", "base"):
        args.add_argument(f"--{name}", required=True)
    args.add_argument("--rpo", type=float, required=True)
    args.add_argument("--write-rate", dest="write_rate", type=int, default=0)
    args.add_argument("--verify", action="store_true", help="whole-disk digest per sync")
    return args


def _mark(path: Path, **update: object) -> None:
    save_json(path, {**read_json(path), **update})


def main(argv: list[str] | None = None) -> int:
    o = _parser().parse_args(argv)
    cfg = ReplicationConfig(o.lab, o.vm, o.source, o.server, o.target, o.disk, o.datastore,
                            o.path, o.rpo, write_rate=o.write_rate)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    record = record_path(o.lab, o.vm)
    _mark(record, pid=os.getpid(), state="starting", lab=o.lab, vm=o.vm, started=time.time())
    dc = Inventory.open(Path(o.store)).read()
    sd = state_dir(o.lab)
    nfc = ReplicaNfc(dc, o.lab, o.target, Datastores(Path(o.base)))
    server = ReplicationServer(dc, o.lab, o.server, sd)
    agent: SourceAgent | None = None
    ns = Path("/run/netns") / stack_ns(o.lab, o.source, "defaultTcpipStack")
    try:
        nfc.start()
        server.start()
        agent = SourceAgent(cfg, dc, sd, verify=o.verify).start()
        _mark(record, state="running", shared_nfc=nfc.shared,
              nfc=[f"{e.host}/{e.vmknic} {e.address.ip}" for e in nfc.endpoints])
        print(f"replication of {o.vm}: {o.source} -> {o.server} -> {o.target}, "
              f"RPO {o.rpo:g} s", flush=True)
        while not stop.wait(POLL):
            if not record.exists() or not ns.exists():
                break  # stopped by the CLI, or lab down removed the lab: go with it
        return 0
    except Exception as err:  # the CLI shows this state and the log
        traceback.print_exc()
        _mark(record, state="failed", error=f"{type(err).__name__}: {err}")
        return 1
    finally:
        if agent is not None and ns.exists():  # a lab that is gone keeps no state
            agent.stop()
        server.stop()
        nfc.stop()
        if record.exists() and read_json(record).get("state") == "running":
            _mark(record, state="stopped", stopped=time.time())


if __name__ == "__main__":
    raise SystemExit(main())
