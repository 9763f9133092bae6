"""FDM in one host's agent: heartbeats, election, verdicts, isolation, restarts.

Threads: one receiver per management address (UDP 8182 bound to it, so what
it sends leaves by that adapter), one ticker (every second: heartbeats to
every peer address from every own address, the datastore heartbeat, the
datastore reads, the verdicts, the election, the isolation check, the
restarts, the view file) and one that talks to the controller (the HA
settings every CONFIG_EVERY s, the events as soon as there are some). The
controller is only needed to learn the settings: the last ones are kept on
disk, and everything else goes on without it.
"""

from __future__ import annotations

import contextlib
import secrets
import socket
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from ..errors import VmknetError
from . import datastore, election, view, wire
from .config import Datastore, HaConfig, load, parse, save
from .restart import Vm, place, protection
from .verdicts import (
    FAIL_AFTER,
    FAILED,
    ISOLATED,
    LIVE,
    SUSPECT,
    Observed,
    verdict,
)

TICK = 1.0  # s: vSphere HA's heartbeat interval
JUDGE = 0.25  # s between two looks at the evidence
CONFIG_EVERY = 10.0  # s between asks for the settings when nothing else is to be said
ELECTION_WAIT = 5.0  # s a fresh FDM listens before it may claim (vSphere's election: 15 s)
RESTART_WAIT = 10.0  # s a restart request may stay unanswered before another try
PING_TIMEOUT = 0.5  # s per ping
MAX_EVENTS = 200  # kept while the controller is away
MAX_IDS = 1024  # restart request ids remembered (each one arrives once per link)


class HostSide(Protocol):
    """What FDM needs of its agent (agent/fdm_host.py)."""

    host: str
    lab: str

    def vms(self) -> list[Vm]: ...

    def start_vm(self, vm: Vm) -> None: ...

    def stop_vm(self, name: str) -> None: ...

    def controller(self, params: dict[str, Any]) -> dict[str, Any]: ...

    def store(self, ds: Datastore) -> datastore.Store: ...


@dataclass
class Peer:
    links: dict[tuple[str, str], float] = field(default_factory=dict)
    role: str = "secondary"
    primary: str | None = None
    datastores: int = 0
    vms: list[Vm] = field(default_factory=list)
    isolated: bool = False
    seen: dict[str, datastore.Seen] = field(default_factory=dict)  # per datastore
    pinged: tuple[bool, float] | None = None
    pinging: bool = False
    state: str = SUSPECT  # until heard, or judged
    since: float = field(default_factory=time.monotonic)


def _vm(raw: dict[str, Any]) -> Vm | None:
    try:
        disk = raw.get("disk")
        return Vm(str(raw["name"]), int(raw["memory"]), int(raw.get("dirtyRate", 0)),
                  disk if isinstance(disk, str) else None)
    except (KeyError, TypeError, ValueError):
        return None


class Fdm:
    def __init__(self, side: HostSide, folder: Path) -> None:
        self.side, self.folder = side, folder
        self.config: HaConfig | None = None
        self._raw: dict[str, Any] | None = None
        self.peers: dict[str, Peer] = {}
        self.role: str = "secondary"
        self.primary: str | None = None
        self.isolated = False
        self.powered_off: list[Vm] = []
        self.events: list[dict[str, str]] = []
        self.pending: dict[str, tuple[str, str, float]] = {}  # vm -> (host, id, deadline)
        self.handled: set[tuple[str, str]] = set()  # (failed host, vm) restarted already
        self._alone_since: float | None = None  # when it last pinged its isolation addresses
        self._isolation_check = False
        self._seq = 0
        self._mine: list[Vm] = []  # this host's VMs as the last tick found them
        self._socks: dict[str, socket.socket] = {}
        self._replay = wire.Replay()
        self.refused = 0  # datagrams on UDP 8182 refused (not sealed with the key, not a
        self.last_refusal = ""  # peer's, replayed), shown in the view with the last reason
        self._done_ids: dict[tuple[str, str], None] = {}  # restart requests seen, in order
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._started = time.monotonic()

    # -- life -----------------------------------------------------------------------------

    def start(self) -> None:
        kept = load(self.folder / "ha.json")
        if kept is not None:
            self._configure(*kept)
        for target in (self._ticker, self._datastore_loop, self._controller_loop):
            self._spawn(target)

    def stop(self) -> None:
        self._stop.set()
        with self._lock:
            for sock in self._socks.values():
                with contextlib.suppress(OSError):
                    sock.close()
            self._socks.clear()

    def _spawn(self, target: Callable[..., None], *args: Any) -> None:
        t = threading.Thread(target=target, args=args, daemon=True, name="fdm")
        t.start()
        self._threads.append(t)

    def event(self, kind: str, message: str, path: str | None = None) -> None:
        cfg = self.config
        with self._lock:
            self.events = [*self.events, {"kind": kind, "message": message, "path": path or (
                f"clusters/{cfg.cluster}" if cfg else f"hosts/{self.side.host}")}][-MAX_EVENTS:]

    # -- settings -------------------------------------------------------------------------

    def _configure(self, cfg: HaConfig, raw: dict[str, Any]) -> None:
        with self._lock:
            if self._raw == raw:
                return
            self.config, self._raw = cfg, raw
            for gone in set(self.peers) - set(cfg.peers()):
                del self.peers[gone]
            for name in cfg.peers():
                self.peers.setdefault(name, Peer())
            own = set(cfg.members[cfg.host].addresses)
            for address in set(self._socks) - own:
                with contextlib.suppress(OSError):
                    self._socks.pop(address).close()
            for address in own - set(self._socks):
                try:
                    sock = socket.socket(socket.AF_INET6 if ":" in address else socket.AF_INET,
                                         socket.SOCK_DGRAM)
                    sock.bind((address, wire.PORT))
                    sock.settimeout(0.5)
                except OSError as err:
                    self.event("HA-1", f"FDM of {cfg.host} cannot listen on {address}:"
                               f"{wire.PORT}: {err.strerror}", f"hosts/{cfg.host}")
                    continue
                self._socks[address] = sock
                self._spawn(self._receive, address, sock)
        save(cfg, raw, self.folder / "ha.json")

    def _controller_loop(self) -> None:
        last_ask = float("-inf")
        while not self._stop.is_set():
            with self._lock:
                events, self.events = self.events, []
            if events or time.monotonic() - last_ask >= CONFIG_EVERY:
                try:
                    reply = self.side.controller({"events": events[:50]})
                    with self._lock:
                        self.events = events[50:] + self.events
                    last_ask = time.monotonic()
                    self._follow(reply.get("ha"))
                except (OSError, VmknetError, ValueError, TypeError):
                    with self._lock:  # the controller is away: keep them for later
                        self.events = (events + self.events)[-MAX_EVENTS:]
            self._stop.wait(TICK)

    def _follow(self, raw: Any) -> None:
        if raw is None:
            if self.config is not None:  # HA switched off, or the host left the cluster
                self.event("HA-1", f"HA unconfigured on {self.side.host}")
                with self._lock:
                    self.config, self._raw = None, None
                (self.folder / "ha.json").unlink(missing_ok=True)
            return
        try:
            cfg = parse(raw, self.side.host)
        except VmknetError as err:
            self.event("HA-1", f"FDM of {self.side.host} refused its settings: {err}")
            return
        self._configure(cfg, raw)

    # -- network heartbeats ----------------------------------------------------------------

    def _receive(self, address: str, sock: socket.socket) -> None:
        while not self._stop.is_set() and self._socks.get(address) is sock:
            try:
                data, (source, *_rest) = sock.recvfrom(wire.MAX_DATAGRAM + 1)
            except TimeoutError:
                continue
            except OSError:
                return
            try:
                self._accept(address, str(source), data)
            except VmknetError as err:  # dropped, counted: a flood writes nothing to disk
                with self._lock:
                    self.refused += 1
                    self.last_refusal = f"{source}: {err.message}"[:200]

    def _accept(self, local: str, source: str, data: bytes) -> None:
        cfg = self.config
        if cfg is None:
            return
        msg = wire.open_sealed(cfg.key, data)
        sender = str(msg["from"])
        member = cfg.members.get(sender)
        if msg["cluster"] != cfg.cluster or sender == cfg.host or member is None \
                or source not in member.addresses or msg["to"] not in (None, cfg.host) \
                or (msg["kind"] != "hb" and msg["to"] != cfg.host):  # a request names its host
            raise wire.HaWireError(f"An FDM message from {source} that is not a peer's")
        if not self._replay.fresh(sender, (source, local), float(msg["at"])):
            raise wire.HaWireError("A replayed or stale FDM message")
        now = time.monotonic()
        with self._lock:
            peer = self.peers.get(sender)
            if peer is None:
                return
            if msg["kind"] == "hb":
                peer.links[(source, local)] = now
                peer.role, peer.primary = str(msg["role"]), msg["primary"]
                peer.datastores, peer.isolated = int(msg["datastores"]), bool(msg["isolated"])
                peer.vms = [v for v in map(_vm, msg["vms"]) if v is not None]
                return
            # A request goes over every link at once: the first copy to arrive acts.
            once = (str(msg["kind"]), str(msg["id"]))
            if once in self._done_ids:
                return
            self._done_ids[once] = None
            while len(self._done_ids) > MAX_IDS:
                del self._done_ids[next(iter(self._done_ids))]
            if msg["kind"] == "restart":
                self._spawn(self._restart_here, sender, msg["vm"], str(msg["id"]))
            else:
                self._restarted(sender, str(msg["vm"]), str(msg["id"]), msg["error"])

    def _send(self, message: dict[str, Any], to: str | None) -> None:
        """To one peer (`to`), or to every peer: from every own address to every one of
        theirs, each pair its own link."""
        cfg = self.config
        if cfg is None:
            return
        message = message | {"from": cfg.host, "cluster": cfg.cluster, "to": to,
                             "at": time.time()}
        data = wire.seal(cfg.key, message)
        targets = [to] if to else cfg.peers()
        with self._lock:
            socks = list(self._socks.values())
        for sock in socks:
            for peer in targets:
                for address in cfg.members[peer].addresses:
                    with contextlib.suppress(OSError):
                        sock.sendto(data, (address, wire.PORT))

    def _heartbeat(self, cfg: HaConfig, mine: list[Vm]) -> None:
        count = min(len(mine), 64)
        while True:  # a heartbeat always goes: with fewer VMs named if they do not fit
            try:
                self._send({"kind": "hb", "role": self.role, "primary": self.primary,
                            "datastores": len(cfg.members[cfg.host].datastores),
                            "heard": sorted(p for p, s in self.peers.items() if s.state == LIVE),
                            "vms": [v.to_wire() for v in mine[:count]],
                            "isolated": self.isolated}, None)
                return
            except wire.HaWireError:
                if count == 0:
                    raise
                count //= 2

    # -- the tick ------------------------------------------------------------------------

    def _ticker(self) -> None:
        last_beat = float("-inf")
        while not self._stop.wait(JUDGE):
            cfg = self.config
            if cfg is None:
                continue
            beat = time.monotonic() - last_beat >= TICK - JUDGE / 2
            try:
                self.tick(cfg, beat)
            except (OSError, VmknetError, ValueError) as err:
                self.event("HA-1", f"FDM of {cfg.host}: {err}", f"hosts/{cfg.host}")
            if beat:
                last_beat = time.monotonic()

    def tick(self, cfg: HaConfig, beat: bool = True) -> None:
        """Heartbeats once a second (`beat`); verdicts, election and restarts at every
        JUDGE, so a verdict comes a quarter second after its evidence, not a second."""
        if beat:
            mine = self.side.vms()
            with self._lock:
                self._mine = mine
            self._heartbeat(cfg, mine)
        with self._lock:
            mine = list(self._mine)
        now = time.monotonic()
        with self._lock:
            for name, peer in self.peers.items():
                self._judge(cfg, name, peer, now)
            self._elect(cfg)
            self._check_isolation(cfg, now)
        if self.role == "primary" and not self.isolated:
            self._restarts(cfg, mine)
        view.write(self.side.lab, cfg.host, self.snapshot(cfg, mine, now))

    def _datastore_loop(self) -> None:
        """Datastore heartbeats in a thread of their own: a slow or dead NFS server must
        not hold up the network heartbeats."""
        while not self._stop.wait(TICK):
            cfg = self.config
            if cfg is None:
                continue
            with self._lock:
                mine = list(self._mine)
            self._datastores(cfg, mine)

    def _datastores(self, cfg: HaConfig, mine: list[Vm]) -> None:
        self._seq += 1
        data = datastore.beat(cfg.host, self._seq, self.isolated, [v.to_wire() for v in mine],
                              [v.to_wire() for v in self.powered_off])
        for ds in self._hb_stores(cfg, cfg.host):
            with contextlib.suppress(OSError, VmknetError):
                self.side.store(ds).write(datastore.hb_path(cfg.cluster, cfg.host), data)
        now = time.monotonic()
        for name, peer in list(self.peers.items()):
            for ds in self._hb_stores(cfg, name):
                with contextlib.suppress(OSError, VmknetError):
                    old = peer.seen.get(ds.name, datastore.Seen())
                    peer.seen[ds.name] = datastore.look(self.side.store(ds), cfg.cluster,
                                                        name, old, now)

    def _hb_stores(self, cfg: HaConfig, host: str) -> list[Datastore]:
        mounts = {h: [d.name for d in m.datastores] for h, m in cfg.members.items()}
        picked = election.heartbeat_datastores(mounts, host, cfg.heartbeat_datastores)
        mine = {d.name: d for d in cfg.members[cfg.host].datastores}
        return [mine[n] for n in picked if n in mine]  # one we do not mount: cannot read it

    def _judge(self, cfg: HaConfig, name: str, peer: Peer, now: float) -> None:
        moves = sorted(m for s in peer.seen.values() for m in s.moves)[-8:]
        obs = Observed(peer.links, tuple(moves),
                       any(s.isolated for s in peer.seen.values()),
                       peer.pinged[0] if peer.pinged and now - peer.pinged[1] < FAIL_AFTER
                       else None, max(peer.since, self._started))
        state = verdict(obs, now)
        # The ping goes out a second before the network verdict is due, so its answer (or
        # its timeout) is there when the datastore heartbeat is found still.
        if state == SUSPECT and obs.pinged is None and not peer.pinging \
                and now - max(peer.links.values(), default=peer.since) > FAIL_AFTER - 1.0:
            peer.pinging = True
            self._spawn(self._ping_peer, name, cfg.members[name].addresses)
        if state == SUSPECT:
            return
        if state != peer.state:
            was, peer.state = peer.state, state
            if state == LIVE:  # back: what it runs now is what it says in its heartbeats
                self.handled = {(h, v) for h, v in self.handled if h != name}
            if state != LIVE or was != SUSPECT:
                self.event("HA-2", f"vSphere HA ({cfg.host}'s view): host {name} is {state}"
                           f" (was {was})", f"hosts/{name}")
        if state == LIVE:
            peer.pinged = None

    def _ping_peer(self, name: str, addresses: tuple[str, ...]) -> None:
        answered = ping(list(addresses))
        with self._lock:
            peer = self.peers.get(name)
            if peer is not None:
                peer.pinged, peer.pinging = (answered, time.monotonic()), False

    def _elect(self, cfg: HaConfig) -> None:
        own = election.Candidate(cfg.host, len(cfg.members[cfg.host].datastores),
                                 self.role == "primary")
        heard = [election.Candidate(n, p.datastores, p.role == "primary")
                 for n, p in self.peers.items() if p.state == LIVE and not p.isolated]
        if time.monotonic() - self._started < ELECTION_WAIT and self.primary is None \
                and not any(c.claims_primary for c in heard):
            return  # FDM's election listens for the others before anyone claims
        chosen = election.elect([own, *heard]) if not self.isolated else cfg.host
        role = "primary" if chosen == cfg.host else "secondary"
        if chosen != self.primary:
            self.event("HA-1", f"vSphere HA: {cfg.host} sees {chosen} as the primary"
                       f"{' (itself)' if role == 'primary' else ''}"
                       f"{f', was {self.primary}' if self.primary else ''}",
                       f"hosts/{cfg.host}")
        self.role, self.primary = role, chosen

    # -- isolation -----------------------------------------------------------------------

    def _check_isolation(self, cfg: HaConfig, now: float) -> None:
        if not self.peers:
            return
        heard = max((at for p in self.peers.values() for at in p.links.values()),
                    default=self._started)
        if now - heard <= FAIL_AFTER:  # some peer heard lately: not alone
            self._alone_since = None
            if self.isolated:
                self.isolated = False
                self.event("HA-2", f"vSphere HA: host {cfg.host} is no longer isolated",
                           f"hosts/{cfg.host}")
            return
        if (not self.isolated and not self._isolation_check
                and now - self._started >= ELECTION_WAIT
                and now - (self._alone_since or float("-inf")) >= FAIL_AFTER):
            self._alone_since = now  # the last isolation check: one per FAIL_AFTER
            self._isolation_check = True
            self._spawn(self._ping_isolation, cfg)

    def _ping_isolation(self, cfg: HaConfig) -> None:
        try:
            if ping(list(cfg.isolation_addresses)):
                return  # it reaches its network: the others are gone or cut off, not it
            with self._lock:
                heard = max((at for p in self.peers.values() for at in p.links.values()),
                            default=self._started)
                if self.isolated or time.monotonic() - heard <= FAIL_AFTER:
                    return
                self.isolated = True
            self.event("HA-2", f"vSphere HA: host {cfg.host} is isolated: no heartbeat from any"
                       f" peer and none of its isolation addresses "
                       f"({', '.join(cfg.isolation_addresses) or 'none set'}) answers; "
                       f"isolation response {cfg.isolation_response}", f"hosts/{cfg.host}")
            self._respond(cfg)
        finally:
            self._isolation_check = False

    def _respond(self, cfg: HaConfig) -> None:
        if cfg.isolation_response == "none":
            return  # leave powered on: datastore heartbeats say they run
        for vm in self.side.vms():
            try:
                self.side.stop_vm(vm.name)
            except (OSError, VmknetError) as err:
                self.event("HA-3", f"vSphere HA could not {cfg.isolation_response} VM "
                           f"{vm.name} on isolated host {cfg.host}: {err}", f"vms/{vm.name}")
                continue
            with self._lock:
                self.powered_off.append(vm)
            self.event("HA-3", f"vSphere HA: isolation response {cfg.isolation_response} of "
                       f"VM {vm.name} on isolated host {cfg.host}", f"vms/{vm.name}")

    # -- restarts ------------------------------------------------------------------------

    def _restarts(self, cfg: HaConfig, mine: list[Vm]) -> None:
        with self._lock:
            running = {v.name for v in mine}
            live_hosts = {cfg.host: mine}
            for name, peer in self.peers.items():
                if peer.state == LIVE and not peer.isolated:
                    live_hosts[name] = peer.vms
                running |= {v.name for v in peer.vms} if peer.state == LIVE else set()
                for seen in peer.seen.values():
                    if peer.state != FAILED:
                        running |= {str(v.get("name")) for v in seen.vms}
            wanted: dict[str, tuple[Vm, str]] = {}
            for name, peer in self.peers.items():
                lost = peer.vms if peer.state == FAILED else []
                if peer.state == ISOLATED:
                    lost = [v for s in peer.seen.values() for v in map(_vm, s.powered_off)
                            if v is not None]
                for vm in lost:
                    if vm.name not in running and (name, vm.name) not in self.handled:
                        wanted[vm.name] = (vm, name)
            now = time.monotonic()
            for vm_name in [k for k, (_h, _i, d) in self.pending.items() if d < now]:
                del self.pending[vm_name]
            todo = [vm for vm, _ in wanted.values() if vm.name not in self.pending]
        if not todo:
            return
        used = {h: sum(v.memory for v in vms) for h, vms in live_hosts.items()}
        placed, refused = place(todo, used, cfg.host_memory, cfg.priority)
        for vm, why in refused:
            self.event("HA-3", f"vSphere HA cannot restart VM {vm.name} of failed host "
                       f"{wanted[vm.name][1]}: {why}", f"vms/{vm.name}")
            with self._lock:
                self.handled.add((wanted[vm.name][1], vm.name))
        for vm, host in placed:
            rid = secrets.token_hex(8)
            self.event("HA-3", f"vSphere HA is restarting VM {vm.name} of {wanted[vm.name][1]} "
                       f"on host {host} (restart priority {cfg.priority(vm.name)})",
                       f"vms/{vm.name}")
            with self._lock:
                self.pending[vm.name] = (host, rid, time.monotonic() + RESTART_WAIT)
            if host == cfg.host:
                self._spawn(self._restart_here, cfg.host, vm.to_wire(), rid)
            else:
                self._send({"kind": "restart", "vm": vm.to_wire(), "id": rid}, host)

    def _restart_here(self, asker: str, raw: dict[str, Any], rid: str) -> None:
        """A primary asks this host to start a VM of a failed host (its agent is the VM's
        parent); a VM that runs anywhere in the lab already is refused by the agent."""
        vm = _vm(raw)
        error = None
        if vm is None:
            return
        try:
            self.side.start_vm(vm)
        except (OSError, VmknetError) as err:
            error = str(err)[:300]
        reply = {"kind": "restarted", "vm": vm.name, "id": rid, "error": error}
        cfg = self.config
        if cfg is not None and asker == cfg.host:
            self._restarted(cfg.host, vm.name, rid, error)
        else:
            self._send(reply, asker)

    def _restarted(self, host: str, vm: str, rid: str, error: Any) -> None:
        with self._lock:
            pending = self.pending.get(vm)
            if pending is None or pending[1] != rid or pending[0] != host:
                return
            origin = next((n for n, p in self.peers.items()
                           if any(v.name == vm for v in p.vms)
                           or any(v.get("name") == vm for s in p.seen.values()
                                  for v in s.powered_off)), "?")
            if error is None:
                self.handled.add((origin, vm))
        if error is None:
            self.event("HA-3", f"vSphere HA restarted VM {vm} of host {origin} on host {host}",
                       f"vms/{vm}")
        else:
            self.event("HA-3", f"vSphere HA could not restart VM {vm} on host {host}: {error}",
                       f"vms/{vm}")
            with self._lock:  # try again at the next tick (maybe elsewhere)
                self.pending.pop(vm, None)

    # -- the view ------------------------------------------------------------------------

    def snapshot(self, cfg: HaConfig, mine: list[Vm], now: float) -> dict[str, Any]:
        with self._lock:
            hosts: dict[str, Any] = {cfg.host: {
                "state": ISOLATED if self.isolated else LIVE, "links": [], "datastores": {},
                "vms": [v.name for v in mine]}}
            vms = {v.name: (v, cfg.host) for v in mine}
            for name, peer in self.peers.items():
                hosts[name] = {
                    "state": peer.state,
                    "links": [{"remote": r, "local": loc, "ago": round(now - at, 2)}
                              for (r, loc), at in sorted(peer.links.items())],
                    "datastores": {ds: (round(now - s.moved, 2) if s.moved else None)
                                   for ds, s in sorted(peer.seen.items())},
                    "vms": [v.name for v in peer.vms] if peer.state == LIVE else []}
                if peer.state == LIVE:
                    vms |= {v.name: (v, name) for v in peer.vms}
            live = 1 + sum(1 for p in self.peers.values() if p.state == LIVE)
            prot = protection({n: v for n, (v, _h) in vms.items()}, live, cfg.host_memory,
                              cfg.failover_percent, cfg.admission, cfg.priority)
            return {"host": cfg.host, "cluster": cfg.cluster, "role": self.role,
                    "primary": self.primary, "isolated": self.isolated, "at": time.time(),
                    "isolationResponse": cfg.isolation_response,
                    "heartbeatDatastores": [d.name for d in self._hb_stores(cfg, cfg.host)],
                    "hosts": hosts,
                    "vms": {n: {"host": h, "priority": cfg.priority(n),
                                "protected": prot[n] is None, "why": prot[n]}
                            for n, (_v, h) in sorted(vms.items())},
                    "pending": {n: h for n, (h, _i, _d) in self.pending.items()},
                    "refused": {"count": self.refused, "last": self.last_refusal}}


def ping(addresses: list[str]) -> bool:
    """Whether any of `addresses` answers one ICMP echo (all asked at once)."""
    procs = [subprocess.Popen(["ping", "-n", "-q", "-c", "1", "-W", str(PING_TIMEOUT), a],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
             for a in addresses]
    answered = False
    for proc in procs:
        try:
            answered |= proc.wait(PING_TIMEOUT + 2.0) == 0
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return answered
