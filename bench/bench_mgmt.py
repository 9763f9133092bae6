"""Management-plane benchmark: one controller, N heartbeating agents, REST and push, on loopback.

    python bench/bench_mgmt.py              # 1,000 agents in 2 processes
    python bench/bench_mgmt.py --smoke      # 50 agents, a few seconds, what CI runs
    python bench/bench_mgmt.py --hosts 200 --agent-procs 1 --inventory store

Processes (each measured from /proc): the controller (bench/mgmt_controller.py:
a real `vmknet.controller.service.Controller`, started as its `__main__` starts
it, on 127.0.0.1 with a temporary folder and an in-memory inventory of N hosts
whose management adapters are 127.1.x.y), and 1-2 agent processes
(bench/mgmt_agents.py: N simulated agents on asyncio, each on its own
127.1.x.y, each joined by the REAL join flow: a token from the controller's
api.sock, a CSR, a certificate signed by the controller's CA).

Measured in one run:
1. time to create N join tokens and to join all N agents; time until the
   controller reports every host Available;
2. steady state with N agents heartbeating every second over mutual TLS: the
   controller's CPU (% of one core, /proc/<pid>/stat over --window s; aim
   < 10%), RSS and threads; the agents' heartbeat round trip;
3. REST `GET /api/v1/hosts/status` p50/p99 through the controller's REST
   listener under that load (aim p99 < 50 ms), against `GET /api/v1/session`
   (auth only, no payload) as its baseline;
4. the push baseline for "one port-group change realised on all of them in at
   most 5 s": one small message (a ticket, `ticket` on api.sock: the
   controller's existing push, a new mutual-TLS connection to the agent per
   call) to all N agents, sequentially and from a pool of --pool callers;
   then one port-group change rolled out to every host (`portgroup_change`:
   the controller's `rollout.batch`, half the hosts per batch, each agent
   confirming over a fresh connection);
5. baselines: the same agents and heartbeats against a bare TLS server with
   the same frames and no controller work: thread per connection (the
   controller's design), the same with the controller's socket timeout, and
   asyncio; printed as ratios;
6. what one `store.read()` of this datacenter costs: the lab's controller
   calls it on every heartbeat (its inventory callable).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import http.client
import json
import os
import queue
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from mgmt_common import MAX_HOSTS, percentile, plan, proc_sample, rss, shares
from vmknet.controller.rollout import MAX_UNAVAILABLE, batch_size
from vmknet.dataplane import kcodec
from vmknet.dataplane.kops import ModifyLink
from vmknet.dataplane.kstate import Link
from vmknet.mgmt import wire

HERE = Path(__file__).resolve().parent
CPU_AIM = 10.0  # % of one core, controller at steady state with 1,000 agents
REST_P99_AIM = 0.050  # s
PUSH_AIM = 5.0  # s, one port-group change realised on all hosts
TICKET_KIND = "nfc"
BASELINES = ("echo-threads", "echo-threads-timeout", "echo-async")
STATUS, SESSION = "/api/v1/hosts/status", "/api/v1/session"
AS_SERVED_STATUS, NODELAY_STATUS = "hosts/status", "hosts/status, TCP_NODELAY"
# (label, listener in the controller's ready line, path): the listener the controller opens
# (api.listen.listen_loopback) and the bench's second one with TCP_NODELAY (mgmt_controller).
REST_CALLS = [(AS_SERVED_STATUS, "rest", STATUS), ("session", "rest", SESSION),
              (NODELAY_STATUS, "restNodelay", STATUS),
              ("session, TCP_NODELAY", "restNodelay", SESSION)]


# -- configuration -------------------------------------------------------------------------


@dataclass(frozen=True)
class Config:
    hosts: int
    agent_procs: int
    window: float  # s of CPU sampling at steady state
    settle: float  # s between "all Available" and the window
    rest_requests: int
    pool: int
    inventory: str
    baselines: bool
    smoke: bool


def parse_args(argv: Sequence[str] | None = None) -> Config:
    p = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    p.add_argument("--smoke", action="store_true",
                   help="50 agents, 1 process, 2 s windows, 50 REST calls (CI)")
    p.add_argument("--hosts", type=int, default=1000)
    p.add_argument("--agent-procs", type=int, default=2, choices=(1, 2, 3, 4))
    p.add_argument("--window", type=float, default=10.0, help="s of CPU sampling")
    p.add_argument("--settle", type=float, default=3.0)
    p.add_argument("--rest-requests", type=int, default=300)
    p.add_argument("--pool", type=int, default=16, help="parallel callers for the push")
    p.add_argument("--inventory", choices=("memory", "store"), default="memory",
                   help="the controller's inventory callable: one object, or store.read() "
                        "per call as the lab's controller")
    p.add_argument("--no-baselines", action="store_true")
    a = p.parse_args(argv)
    if a.smoke:
        return Config(50, 1, 2.0, 1.0, 50, 8, a.inventory, not a.no_baselines, True)
    if not 1 <= a.hosts <= MAX_HOSTS:
        p.error(f"--hosts must be 1..{MAX_HOSTS}")
    if a.window <= 0 or a.rest_requests < 1 or a.pool < 1:
        p.error("--window, --rest-requests and --pool must be positive")
    return Config(a.hosts, a.agent_procs, a.window, max(0.0, a.settle), a.rest_requests,
                  a.pool, a.inventory, not a.no_baselines, False)


# -- the hook for the lead ---------------------------------------------------------------------


@dataclass(frozen=True)
class ControllerHandle:
    pid: int
    api: Path  # the controller's api.sock (vmknet.mgmt.wire frames)
    rest: str  # its REST base URL
    token: str  # a read-only REST token


@dataclass(frozen=True)
class AgentHandle:
    host: str
    address: str  # its management address (127.1.x.y), where it listens on the agent port


PushHook = Callable[[ControllerHandle, Sequence[AgentHandle]], float]

def portgroup_change(ctl: ControllerHandle, agents: Sequence[AgentHandle]) -> float:
    """One port-group VLAN change on every host, as the controller rolls it out (MGMT-3):
    each host's part is the re-plug of its wire (one ModifyLink), half the hosts per batch;
    every agent decodes and checks its part, then confirms over a fresh mutual-TLS
    connection (MGMT-2). Seconds until the last batch is confirmed by all its hosts."""
    hosts = [a.host for a in agents]
    size = batch_size(len(hosts), MAX_UNAVAILABLE)

    def replug(host: str) -> Any:
        before = Link(f"vmkl-bench.{host}", "vmk0-n0", "veth", master="vl10")
        return kcodec.encode(ModifyLink(before, dataclasses.replace(before, master="vl11")))

    start = time.monotonic()
    for i in range(0, len(hosts), size):
        batch = hosts[i:i + size]
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(300)
            sock.connect(str(ctl.api))
            verdict = wire.call(sock, "rollout.batch", {
                "generation": f"bench{i}", "timeout": 60,
                "ops": {h: [replug(h)] for h in batch}})
        lost = [h for h, state in verdict["hosts"].items() if state != "confirmed"]
        if lost:
            raise RuntimeError(f"{len(lost)} hosts did not confirm, e.g. {lost[:3]}")
    return time.monotonic() - start


# Issue 9's aim "one port-group change realised on all of them in at most 5 s".
PORTGROUP_CHANGE: PushHook | None = portgroup_change


# -- child processes -------------------------------------------------------------------------


class Child:
    """A bench child: JSON lines on its stdout into a queue; commands on its stdin."""

    def __init__(self, args: list[str], name: str) -> None:
        self.name = name
        self.proc = subprocess.Popen([sys.executable, *args], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True, bufsize=1)
        self.lines: queue.Queue[dict[str, Any] | None] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    @property
    def pid(self) -> int:
        return self.proc.pid

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            with contextlib.suppress(ValueError):
                self.lines.put(json.loads(line))
        self.lines.put(None)

    def expect(self, kind: str, timeout: float) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            try:
                msg = self.lines.get(timeout=max(0.01, left))
            except queue.Empty:
                raise RuntimeError(f"{self.name}: no {kind!r} within {timeout:.0f} s") from None
            if msg is None:
                raise RuntimeError(f"{self.name} exited ({self.proc.wait()}) before {kind!r}")
            if msg.get("kind") == kind:
                return msg

    def send(self, command: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()

    def ask(self, command: str, kind: str, timeout: float = 10.0) -> dict[str, Any]:
        self.send(command)
        return self.expect(kind, timeout)

    def stop(self) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(OSError, ValueError):
                self.send("quit")
            with contextlib.suppress(ProcessLookupError):
                self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@contextlib.contextmanager
def children() -> Iterator[list[Child]]:
    started: list[Child] = []
    try:
        yield started
    finally:
        for child in reversed(started):
            child.stop()


def free_port() -> int:
    with socket.create_server(("127.0.0.1", 0)) as s:
        return int(s.getsockname()[1])


# -- measuring -------------------------------------------------------------------------------


@dataclass
class Window:
    """CPU of some processes over one window, as % of one core."""

    seconds: float
    cpu: dict[str, float]  # name -> %
    machine: float  # % of all cores busy
    rss: dict[str, int] = field(default_factory=dict)
    threads: dict[str, int] = field(default_factory=dict)


def machine_busy() -> tuple[float, float]:
    """(busy, total) jiffies of all cores, from the first line of /proc/stat."""
    with open("/proc/stat", encoding="ascii") as f:
        values = [float(x) for x in f.readline().split()[1:]]
    idle = values[3] + values[4]  # idle + iowait
    return sum(values) - idle, sum(values)


def cpu_window(pids: dict[str, int], seconds: float) -> Window:
    before = {n: proc_sample(p) for n, p in pids.items()}
    m0, t0, w0 = *machine_busy(), time.monotonic()
    time.sleep(seconds)
    after = {n: proc_sample(p) for n, p in pids.items()}
    m1, t1, w1 = *machine_busy(), time.monotonic()
    took = w1 - w0
    return Window(took, {n: 100 * (after[n].cpu - before[n].cpu) / took for n in pids},
                  100 * (m1 - m0) / max(1.0, t1 - t0),
                  {n: rss(p) for n, p in pids.items()},
                  {n: after[n].threads for n in pids})


@contextlib.contextmanager
def measured(pids: dict[str, int]) -> Iterator[Window]:
    """A Window over the `with` body: filled in (seconds, CPU %) when the body ends."""
    window = Window(0.0, {}, 0.0)
    before = {n: proc_sample(p) for n, p in pids.items()}
    m0, t0, w0 = *machine_busy(), time.monotonic()
    yield window
    window.seconds = time.monotonic() - w0
    m1, t1 = machine_busy()
    window.cpu = {n: 100 * (proc_sample(p).cpu - before[n].cpu) / window.seconds
                  for n, p in pids.items()}
    window.machine = 100 * (m1 - m0) / max(1.0, t1 - t0)


def fleet_stats(agents: list[Child]) -> dict[str, Any]:
    """The agent processes' stats summed (percentiles: the worst process's)."""
    parts = [a.ask("stats", "stats") for a in agents]
    tickets: dict[str, int] = {}
    for part in parts:
        tickets.update(part["tickets"])
    def worst(key: str) -> float | None:
        values = [p[key] for p in parts if p[key] is not None]
        return max(values) if values else None
    return {"connected": sum(p["connected"] for p in parts),
            "beats": sum(p["beats"] for p in parts), "errors": sum(p["errors"] for p in parts),
            "rttP50": worst("rttP50"), "rttP99": worst("rttP99"), "rttMax": worst("rttMax"),
            "tickets": tickets, "lastError": next((p["lastError"] for p in parts
                                                   if p["lastError"]), "")}


def wait_connected(agents: list[Child], n: int, timeout: float) -> float:
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if fleet_stats(agents)["connected"] >= n:
            return time.monotonic() - start
        time.sleep(0.2)
    raise RuntimeError(f"only {fleet_stats(agents)['connected']} of {n} agents connected")


def api_call(api: Path, method: str, params: dict[str, Any]) -> Any:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(60)
        s.connect(str(api))
        return wire.call(s, method, params)


class ApiClient:
    """One long-lived connection to api.sock (its handler thread serves many calls)."""

    def __init__(self, api: Path) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(60)
        self.sock.connect(str(api))
        self.n = 0

    def call(self, method: str, params: dict[str, Any]) -> Any:
        self.n += 1
        return wire.call(self.sock, method, params, request_id=self.n)

    def close(self) -> None:
        self.sock.close()


def conditions(rows: list[dict[str, Any]]) -> dict[str, int]:
    out: dict[str, int] = {}
    for row in rows:
        out[row["condition"]] = out.get(row["condition"], 0) + 1
    return out


def wait_available(api: Path, n: int, timeout: float) -> float:
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if conditions(api_call(api, "hosts", {})).get("Available", 0) >= n:
            return time.monotonic() - start
        time.sleep(0.2)
    raise RuntimeError(f"hosts not all Available: {conditions(api_call(api, 'hosts', {}))}")


def rest_latencies(url: str, path: str, token: str, count: int,
                   check: Callable[[Any], None]) -> list[float]:
    """`count` sequential GETs on one keep-alive connection; seconds each (body read)."""
    host, port = url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    headers = {"Authorization": f"Bearer {token}"}
    out = []
    try:
        for i in range(count):
            start = time.perf_counter()
            conn.request("GET", path, headers=headers)
            resp = conn.getresponse()
            body = resp.read()
            out.append(time.perf_counter() - start)
            if resp.status != 200:
                raise RuntimeError(f"GET {path}: {resp.status} {body[:200]!r}")
            if i == 0:
                check(json.loads(body))
    finally:
        conn.close()
    return out


def push_tickets(api: Path, hosts: Sequence[str], pool: int) -> list[float]:
    """One ticket to each host's agent through the controller; seconds per call. With
    pool > 1, that many callers, each on its own api.sock connection (and so on its own
    controller thread)."""
    local = threading.local()
    clients: list[ApiClient] = []
    lock = threading.Lock()

    def one(host: str) -> float:
        client = getattr(local, "client", None)
        if client is None:
            client = local.client = ApiClient(api)
            with lock:
                clients.append(client)
        start = time.perf_counter()
        client.call("ticket", {"kind": TICKET_KIND, "source": host, "target": host,
                               "operation": "bench-push", "ttl": 60})
        return time.perf_counter() - start

    try:
        if pool == 1:
            return [one(h) for h in hosts]
        with ThreadPoolExecutor(pool) as ex:
            return list(ex.map(one, hosts))
    finally:
        for c in clients:
            c.close()


def store_read_seconds(path: Path, repeat: int = 5) -> float:
    from vmknet.store import Store

    store = Store(path)
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        store.read()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


# -- the phases --------------------------------------------------------------------------------


@dataclass
class Results:
    cfg: Config
    tokens: float = 0.0
    join: float = 0.0
    join_failed: int = 0
    available: float = 0.0
    steady: Window | None = None
    steady_fleet: dict[str, Any] = field(default_factory=dict)
    rest: dict[str, list[float]] = field(default_factory=dict)  # REST_CALLS label -> s
    rest_window: Window | None = None
    rest_rows: dict[str, int] = field(default_factory=dict)
    push_seq: list[float] = field(default_factory=list)
    push_seq_wall: float = 0.0
    push_pool: list[float] = field(default_factory=list)
    push_pool_wall: float = 0.0
    push_seq_window: Window | None = None
    push_pool_window: Window | None = None
    push_delivered: tuple[int, int] = (0, 0)  # hosts with >= 1 and >= 2 tickets
    portgroup: float | None = None
    baselines: dict[str, tuple[Window, dict[str, Any]]] = field(default_factory=dict)
    store_read: float = 0.0


def start_agents(cfg: Config, tmp: Path, entries: list[dict[str, str]], port: int,
                 agent_port: int, started: list[Child], join: str | None) -> list[Child]:
    agents = []
    for k, part in enumerate(shares(entries, cfg.agent_procs)):
        plan_file = tmp / f"plan-{k}.json"
        plan_file.write_text(json.dumps(part), encoding="utf-8")
        args = [str(HERE / "mgmt_agents.py"), "--plan", str(plan_file), "--folder", str(tmp),
                "--controller-port", str(port), "--agent-port", str(agent_port)]
        if join is not None:
            args += ["--join", "--ca", join]
        child = Child(args, f"agents-{k}")
        started.append(child)
        agents.append(child)
    return agents


def controller_phase(cfg: Config, tmp: Path, r: Results) -> None:
    from vmknet.api.tokens import TokenBook

    secret, _ = TokenBook(tmp / "api-tokens.json").create("read-only", "bench")
    agent_port = free_port()
    with children() as started:
        ctl = Child([str(HERE / "mgmt_controller.py"), "controller", "--folder", str(tmp),
                     "--hosts", str(cfg.hosts), "--agent-port", str(agent_port),
                     "--inventory", cfg.inventory], "controller")
        started.append(ctl)
        ready = ctl.expect("ready", 120)
        api = Path(ready["api"])
        hosts = plan(cfg.hosts)

        start = time.perf_counter()
        client = ApiClient(api)
        tokens = [client.call("join-token", {"host": h})["token"] for h, _ in hosts]
        client.close()
        r.tokens = time.perf_counter() - start

        entries = [{"host": h, "address": a, "token": t} for (h, a), t in zip(hosts, tokens,
                                                                             strict=True)]
        spawned = time.monotonic()
        agents = start_agents(cfg, tmp, entries, ready["port"], agent_port, started,
                              join=ready["ca"])
        joined = [a.expect("joined", 120 + cfg.hosts * 0.5) for a in agents]
        r.join = max(j["end"] for j in joined) - min(j["start"] for j in joined)
        r.join_failed = sum(j["failed"] for j in joined)
        if r.join_failed:
            errors = [e for j in joined for e in j["errors"]]
            raise RuntimeError(f"{r.join_failed} joins failed, e.g. {errors[:3]}")
        for a in agents:
            a.expect("listening", 120)
        wait_available(api, cfg.hosts, 60 + cfg.hosts * 0.05)
        r.available = time.monotonic() - spawned

        time.sleep(cfg.settle)
        for a in agents:
            a.send("reset")
        pids = {"controller": ctl.pid} | {a.name: a.pid for a in agents}
        r.steady = cpu_window(pids, cfg.window)
        r.steady_fleet = fleet_stats(agents)

        def check_rows(rows: Any) -> None:
            if len(rows) != cfg.hosts:
                raise RuntimeError(f"hosts/status has {len(rows)} rows, not {cfg.hosts}")
            r.rest_rows = conditions(rows)

        for label, listener, path in REST_CALLS:
            with measured(pids) as window:
                r.rest[label] = rest_latencies(ready[listener], path, secret,
                                               cfg.rest_requests,
                                               check_rows if path == STATUS else lambda _: None)
            if label == NODELAY_STATUS:
                r.rest_window = window

        names = [h for h, _ in hosts]
        with measured(pids) as r.push_seq_window:
            r.push_seq = push_tickets(api, names, 1)
        with measured(pids) as r.push_pool_window:
            r.push_pool = push_tickets(api, names, cfg.pool)
        r.push_seq_wall, r.push_pool_wall = r.push_seq_window.seconds, r.push_pool_window.seconds
        got = fleet_stats(agents)["tickets"]
        r.push_delivered = (sum(1 for h in names if got.get(h, 0) >= 1),
                            sum(1 for h in names if got.get(h, 0) >= 2))
        if PORTGROUP_CHANGE is not None:
            handle = ControllerHandle(ctl.pid, api, ready["rest"], secret)
            r.portgroup = PORTGROUP_CHANGE(handle, [AgentHandle(h, a) for h, a in hosts])
    r.store_read = store_read_seconds(tmp / "inventory.sqlite")


def baseline_phase(cfg: Config, tmp: Path, mode: str, r: Results) -> None:
    entries = [{"host": h, "address": a, "token": ""} for h, a in plan(cfg.hosts)]
    with children() as started:
        server = Child([str(HERE / "mgmt_controller.py"), mode, "--folder", str(tmp)], mode)
        started.append(server)
        port = server.expect("ready", 60)["port"]
        agents = start_agents(cfg, tmp, entries, port, free_port(), started, join=None)
        for a in agents:
            a.expect("listening", 120)
        wait_connected(agents, cfg.hosts, 60 + cfg.hosts * 0.05)
        time.sleep(cfg.settle + 1.0)  # every agent past its first beat
        for a in agents:
            a.send("reset")
        window = cpu_window({"server": server.pid} | {a.name: a.pid for a in agents},
                            cfg.window)
        r.baselines[mode] = (window, fleet_stats(agents))


# -- the report ----------------------------------------------------------------------------------


def ms(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds * 1000:.1f} ms"


def ratio(a: float, b: float) -> str:
    return f"{a / b:.1f}x" if b > 0 else "-"


def verdict(value: float, aim: float) -> str:
    return "ok" if value <= aim else "OVER"


def agents_cpu(w: Window) -> float:
    return sum(v for k, v in w.cpu.items() if k.startswith("agents"))


def cpu_note(w: Window | None) -> str:
    if w is None or "controller" not in w.cpu:
        return ""
    return (f"; CPU controller {w.cpu['controller']:.0f}%, agents {agents_cpu(w):.0f}%, "
            f"machine {w.machine:.0f}%")


def report(r: Results) -> str:
    cfg, n = r.cfg, r.cfg.hosts
    lines = [f"{n} agents in {cfg.agent_procs} process(es), inventory {cfg.inventory}, "
             f"{os.cpu_count()} cores; CPU windows {cfg.window:.0f} s"]
    lines.append("")
    lines.append("join")
    lines.append(f"  {n} join tokens over api.sock          {r.tokens:8.2f} s")
    lines.append(f"  {n} agents joined (real join flow)     {r.join:8.2f} s"
                 f"  ({n / r.join if r.join else 0:.0f}/s, {r.join_failed} failed)")
    lines.append(f"  spawn -> all Available                 {r.available:8.2f} s")
    if r.steady is not None:
        w, f = r.steady, r.steady_fleet
        cpu = w.cpu["controller"]
        lines += ["", f"steady state ({n} heartbeats/s aimed)"]
        lines.append(f"  controller CPU                         {cpu:8.1f} % of one core"
                     f"   aim < {CPU_AIM:.0f}%: {verdict(cpu, CPU_AIM)}")
        lines.append(f"  controller RSS                         "
                     f"{w.rss['controller'] / 2**20:8.1f} MiB, {w.threads['controller']} threads")
        lines.append(f"  agents' CPU (all processes)            {agents_cpu(w):8.1f} %"
                     f";  machine busy {w.machine:.0f}% of {os.cpu_count()} cores")
        rate = f["beats"] / w.seconds if w.seconds else 0.0
        lines.append(f"  heartbeats answered                    {rate:8.0f} /s"
                     f"  ({f['errors']} errors), round trip p50 {ms(f['rttP50'])}"
                     f", p99 {ms(f['rttP99'])}, max {ms(f['rttMax'])}")
        if f["errors"]:
            lines.append(f"  last heartbeat error: {f['lastError']}")
    for mode, (bw, bf) in r.baselines.items():
        bcpu = bw.cpu["server"]
        brate = bf["beats"] / bw.seconds if bw.seconds else 0.0
        ctl = r.steady.cpu["controller"] if r.steady else 0.0
        lines.append(f"  baseline {mode:21}        {bcpu:8.1f} %  ({brate:.0f} beats/s, "
                     f"p99 {ms(bf['rttP99'])}, RSS {bw.rss['server'] / 2**20:.1f} MiB, "
                     f"{bw.threads['server']} threads): controller = {ratio(ctl, bcpu)}")
    if r.rest:
        lines += ["", f"REST under that load ({cfg.rest_requests} sequential GETs each, "
                      f"one keep-alive connection; {n} rows: {r.rest_rows})"]
        base = {"rest": percentile(r.rest.get("session", [0.0]), 50),
                "restNodelay": percentile(r.rest.get("session, TCP_NODELAY", [0.0]), 50)}
        for label, listener, path in REST_CALLS:
            if label not in r.rest:
                continue
            p50, p99 = percentile(r.rest[label], 50), percentile(r.rest[label], 99)
            note = (f"aim p99 < {REST_P99_AIM * 1000:.0f} ms: {verdict(p99, REST_P99_AIM)}; "
                    f"= {ratio(p50, base[listener])} its listener's session at p50"
                    if path == STATUS else "auth only, no payload")
            lines.append(f"  GET {label:27} p50 {ms(p50):>9}  p99 {ms(p99):>9}   {note}")
        if r.rest_window is not None:
            lines.append(f"  controller CPU while serving hosts/status (TCP_NODELAY) "
                         f"{r.rest_window.cpu['controller']:.0f} % of one core")
    if r.push_seq:
        lines += ["", f"push to all {n} agents (one ticket each through the controller; "
                      f"aim for a port-group change: {PUSH_AIM:.0f} s)"]
        lines.append(f"  sequential                 {r.push_seq_wall:8.2f} s   "
                     f"per call p50 {ms(percentile(r.push_seq, 50))}, "
                     f"p99 {ms(percentile(r.push_seq, 99))}{cpu_note(r.push_seq_window)}")
        lines.append(f"  pool of {cfg.pool:<3}                {r.push_pool_wall:8.2f} s   "
                     f"per call p50 {ms(percentile(r.push_pool, 50))}, "
                     f"p99 {ms(percentile(r.push_pool, 99))}; "
                     f"{ratio(r.push_seq_wall, r.push_pool_wall)} faster"
                     f"{cpu_note(r.push_pool_window)}")
        lines.append(f"  delivered: {r.push_delivered[0]}/{n} hosts got the first, "
                     f"{r.push_delivered[1]}/{n} the second")
        lines.append("  port-group change (PORTGROUP_CHANGE hook): " + (
            "not run" if r.portgroup is None else
            f"{r.portgroup:.2f} s, aim {PUSH_AIM:.0f} s: {verdict(r.portgroup, PUSH_AIM)}"))
    if r.store_read:
        lines += ["", f"store.read() of this datacenter      {ms(r.store_read)}: a read per "
                      f"heartbeat would cost ~{r.store_read * n * 100:.0f}% of one core for {n} "
                      "agents at 1/s; the controller's InventorySnapshot reads once per version"]
    return "\n".join(lines)


def over_aims(r: Results) -> list[str]:
    over = []
    if r.steady is not None and r.steady.cpu["controller"] > CPU_AIM:
        over.append("controller CPU")
    if AS_SERVED_STATUS in r.rest and percentile(r.rest[AS_SERVED_STATUS], 99) > REST_P99_AIM:
        over.append("REST p99")
    if r.portgroup is not None and r.portgroup > PUSH_AIM:
        over.append("port-group push")
    return over


def main(argv: Sequence[str] | None = None) -> int:
    cfg = parse_args(argv)
    tmp = Path(tempfile.mkdtemp(prefix="vmknet-bench-mgmt-"))
    r = Results(cfg)
    try:
        controller_phase(cfg, tmp, r)
        if cfg.baselines:
            for mode in BASELINES:
                baseline_phase(cfg, tmp, mode, r)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(report(r))
    over = over_aims(r)
    if over:
        print(f"over the aim: {', '.join(over)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
