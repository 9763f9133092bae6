"""One replication as a lab process: the source agent, and without a controller the rest too.

    python -m vmknet.replication.daemon source --lab=L --vm=VM --host=esx01 \
        --server=vr01 --target=esx04 --disk=FILE --datastore=ds1 --path=VM/DISK \
        --rpo=300 [--write-rate=N] [--verify=1] [--store=DB] --ready-fd=N
    python -m vmknet.replication.daemon --lab=L --vm=VM --store=DB --source=esx01 \
        --server=vr01 --target=esx04 --disk=FILE --datastore=ds1 --path=VM/DISK \
        --rpo=300 --base=DIR [--write-rate=N] [--verify]

`source`: the source agent alone, on the VM's host, its agent's child (`process.start`
kind `replication`); the server and the target's endpoint are processes of their own
hosts (`replication/endpoint.py`). Without `source` (a lab without a controller),
one detached process holds the server, the target's NFC endpoint and the source
agent, as `vmknet replication configure` started it before the split. Either
records itself in replication/daemon-<vm>.json (state "starting", then "running"
or "failed"), and exits on SIGTERM, when that record goes, or when the source
host's namespace does (`lab down`). It saves the agent's state on the way out.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
import time
import traceback
from pathlib import Path

from ..inventory import Inventory
from ..lab.registry import store_of
from ..mgmt import spawn
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


def _source_parser() -> argparse.ArgumentParser:
    args = argparse.ArgumentParser(prog="python -m vmknet.replication.daemon source")
    for name in ("lab", "vm", "host", "server", "target", "disk", "datastore", "path"):
        args.add_argument(f"--{name}", required=True)
    args.add_argument("--rpo", type=float, required=True)
    args.add_argument("--write-rate", dest="write_rate", type=int, default=0)
    args.add_argument("--verify", type=int, choices=(0, 1), default=0)
    args.add_argument("--store", help="the lab's inventory store (default: lab registry)")
    args.add_argument("--ready-fd", type=int)
    return args


def _mark(path: Path, **update: object) -> None:
    save_json(path, {**read_json(path), **update})


def main(argv: list[str] | None = None) -> int:
    argv = list(argv) if argv is not None else sys.argv[1:]
    if argv[:1] == ["source"]:
        o = _source_parser().parse_args(argv[1:])
        store = Path(o.store) if o.store else store_of(o.lab)
        if store is None:
            raise SystemExit(f"no store for lab {o.lab}: give --store")
        cfg = ReplicationConfig(o.lab, o.vm, o.host, o.server, o.target, o.disk, o.datastore,
                                o.path, o.rpo, write_rate=o.write_rate)
        return _run(cfg, store, None, bool(o.verify), o.ready_fd)
    o = _parser().parse_args(argv)
    cfg = ReplicationConfig(o.lab, o.vm, o.source, o.server, o.target, o.disk, o.datastore,
                            o.path, o.rpo, write_rate=o.write_rate)
    return _run(cfg, o.store, Path(o.base), o.verify, None)


def _run(cfg: ReplicationConfig, store: Path | str, base: Path | None, verify: bool,
         ready_fd: int | None) -> int:
    """The source agent; with `base`, also the server and the target's NFC endpoint."""
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    record = record_path(cfg.lab, cfg.vm)
    _mark(record, pid=os.getpid(), state="starting", lab=cfg.lab, vm=cfg.vm,
          started=time.time())
    dc = Inventory.open(Path(store) if isinstance(store, str) else store).read()
    sd = state_dir(cfg.lab)
    nfc = ReplicaNfc(dc, cfg.lab, cfg.target, Datastores(base)) if base else None
    server = ReplicationServer(dc, cfg.lab, cfg.server, sd) if base else None
    agent: SourceAgent | None = None
    ns = Path("/run/netns") / stack_ns(cfg.lab, cfg.source, "defaultTcpipStack")
    try:
        if nfc is not None and server is not None:
            nfc.start()
            server.start()
        agent = SourceAgent(cfg, dc, sd, verify=verify)  # SVC-4, NoPath: before ready
        # Ready before the first sync: its ticket comes through the controller, which
        # may still be waiting on this host's agent for our start (one call at a time).
        spawn.ready(ready_fd)
        agent.start()
        _mark(record, state="running", shared_nfc=nfc.shared if nfc else None,
              nfc=[f"{e.host}/{e.vmknic} {e.address.ip}" for e in nfc.endpoints] if nfc
              else [])
        print(f"replication of {cfg.vm}: {cfg.source} -> {cfg.server} -> {cfg.target}, "
              f"RPO {cfg.rpo:g} s", flush=True)
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
        if server is not None:
            server.stop()
        if nfc is not None:
            nfc.stop()
        if record.exists() and read_json(record).get("state") == "running":
            _mark(record, state="stopped", stopped=time.time())


if __name__ == "__main__":
    raise SystemExit(main())
