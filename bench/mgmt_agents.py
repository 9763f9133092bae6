"""Simulated host agents for bench_mgmt.py: many in one process, on one asyncio loop.

    python bench/mgmt_agents.py --plan PLAN.json --folder F --controller-port P --agent-port Q
                                [--join --ca FINGERPRINT]

PLAN.json is a list of {"host", "address", "token"}. Each simulated agent does
on the wire what `vmknet.agent.service.Agent` does (the in-memory backend: no
kernel, no processes), from its own management address 127.1.x.y:

- with --join, the real join flow: a fresh P-256 key and CSR, the one-time
  token, TLS without a client certificate pinned to the CA's fingerprint; the
  certificate the controller's CA signs is saved under F/agents/<host>/.
  Without --join it reuses the credential a previous run saved (the baselines);
- heartbeats over mutual TLS: one long-lived connection bound to its address,
  `heartbeat {pid, error}` then a 1 s pause, as the agent's loop does (so the
  period is 1 s plus the round trip); the first one at a random offset in
  [0, 1) s, as agents that started at different times;
- listens on its address, port Q, with its host certificate, for the
  controller (mutual TLS, the peer must be the controller): `ping`,
  `ticket.put` (the ticket is parsed and checked as the agent does),
  `ticket.drop`.

stdin takes one command a line: `stats` (one JSON line back), `reset` (forget
round-trip samples), `quit` (or end of input). Every line on stdout is one
JSON object (mgmt_common.say).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import json
import os
import random
import resource
import ssl
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any, cast

sys.path.insert(0, str(Path(__file__).resolve().parent))

from mgmt_common import call, frame, percentile, read_frame, say
from vmknet.agent.rollback import PUSH_WAIT
from vmknet.dataplane import kcodec
from vmknet.dataplane.plan import describe
from vmknet.errors import VmknetError
from vmknet.trust import pki, tickets

HEARTBEAT = 1.0
TIMEOUT = 5.0


class Fleet:
    def __init__(self, args: argparse.Namespace, plan: list[dict[str, str]]) -> None:
        self.args, self.plan = args, plan
        self.folder = Path(args.folder) / "agents"
        self.rtts: list[float] = []
        self.beats = 0
        self.beat_errors = 0
        self.connected: set[str] = set()
        self.tickets: Counter[str] = Counter()
        self.realised: Counter[str] = Counter()  # changes confirmed, per host
        self.client_ctx: dict[str, ssl.SSLContext] = {}
        self.confirming: set[asyncio.Task[None]] = set()
        self.settled: dict[tuple[str, str], asyncio.Event] = {}
        self.addr: dict[str, str] = {}
        self.last_error = ""

    # -- join ------------------------------------------------------------------------------

    async def join_all(self) -> None:
        gate = asyncio.Semaphore(self.args.join_concurrency)
        pinned = pki.pinned_client_context(self.args.ca)
        errors: list[str] = []

        async def one(entry: dict[str, str]) -> None:
            async with gate:
                try:
                    await self.join(entry, pinned)
                except (TimeoutError, OSError, VmknetError, ValueError) as err:
                    errors.append(f"{entry['host']}: {err!r}")

        start = time.monotonic()
        await asyncio.gather(*(one(e) for e in self.plan))
        say("joined", hosts=len(self.plan) - len(errors), start=start, end=time.monotonic(),
            errors=errors[:5], failed=len(errors))

    async def join(self, entry: dict[str, str], pinned: ssl.SSLContext) -> None:
        host, addr = entry["host"], entry["address"]
        key, csr = pki.request(host)
        reader, writer = await asyncio.wait_for(asyncio.open_connection(
            "127.0.0.1", self.args.controller_port, ssl=pinned, server_hostname="",
            local_addr=(addr, 0)), TIMEOUT)
        try:
            reply = await asyncio.wait_for(
                call(reader, writer, "join", {"token": entry["token"], "csr": csr.decode()}),
                TIMEOUT)
            ca = str(reply["ca"]).encode()
            # check_pinned reads only getpeercert(): asyncio's SSLObject has the same method.
            pki.check_pinned(cast(ssl.SSLSocket, writer.get_extra_info("ssl_object")), ca,
                             self.args.ca)
        finally:
            writer.close()
        pki.Credential(str(reply["cert"]).encode(), key, ca).save(self.folder / host)

    # -- run -------------------------------------------------------------------------------

    async def run(self) -> None:
        servers = []
        beating = []
        for entry in self.plan:
            host, addr = entry["host"], entry["address"]
            folder = self.folder / host
            cred = pki.Credential.load(folder)
            server_ctx = pki.server_context(cred, folder)
            client_ctx = pki.client_context(cred, folder)
            servers.append(await asyncio.start_server(
                functools.partial(self.serve, host), addr, self.args.agent_port,
                ssl=server_ctx, backlog=16))
            self.client_ctx[host], self.addr[host] = client_ctx, addr
            beating.append(asyncio.create_task(self.heartbeat(host, addr, client_ctx)))
        say("listening", hosts=len(servers))
        await self.commands()
        for task in beating:
            task.cancel()
        for server in servers:
            server.close()

    async def heartbeat(self, host: str, addr: str, ctx: ssl.SSLContext) -> None:
        await asyncio.sleep(random.random() * HEARTBEAT)
        while True:
            writer = None
            try:
                reader, writer = await asyncio.wait_for(asyncio.open_connection(
                    "127.0.0.1", self.args.controller_port, ssl=ctx, server_hostname="",
                    local_addr=(addr, 0)), TIMEOUT)
                ssl_object: Any = writer.get_extra_info("ssl_object")
                if pki.identity(ssl_object.getpeercert(binary_form=True)).role != pki.CONTROLLER:
                    raise pki.TrustError("the heartbeat peer is not the controller")
                self.connected.add(host)
                while True:
                    start = time.monotonic()
                    await asyncio.wait_for(call(reader, writer, "heartbeat",
                                                {"pid": os.getpid(), "error": None}), TIMEOUT)
                    self.rtts.append(time.monotonic() - start)
                    self.beats += 1
                    await asyncio.sleep(HEARTBEAT)
            except (TimeoutError, OSError, VmknetError, ValueError) as err:
                self.beat_errors += 1
                self.last_error = f"{host}: {err!r}"[:300]
                self.connected.discard(host)
                if writer is not None:
                    writer.close()
                await asyncio.sleep(HEARTBEAT)

    async def serve(self, host: str, reader: asyncio.StreamReader,
                    writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError, VmknetError, ValueError, asyncio.IncompleteReadError):
            ssl_object: Any = writer.get_extra_info("ssl_object")
            if pki.identity(ssl_object.getpeercert(binary_form=True)).role != pki.CONTROLLER:
                return
            while (request := await read_frame(reader, 4 * 1024 * 1024)) is not None:
                method, params = request.get("method"), request.get("params") or {}
                result: dict[str, Any]
                if method == "ticket.put":
                    ticket = tickets.Ticket.from_json(str(params.get("ticket", "")))
                    if host not in (ticket.source, ticket.target):
                        raise pki.TrustError("ticket for another host", code="BadTicket")
                    self.tickets[host] += 1
                    result = {"id": ticket.id}
                elif method == "realise":
                    # The agent's part of a change (MGMT-3): decoded and checked as the real
                    # agent does; no kernel here. Then it must confirm (MGMT-2), like the agent.
                    ops = [kcodec.decode_op(op) for op in params.get("ops", [])]
                    if any(host not in describe(op) for op in ops):
                        raise pki.TrustError("an op outside this host", code="NotAuthorized")
                    settled = self.settled[(host, str(params["generation"]))] = asyncio.Event()
                    task = asyncio.create_task(self.confirm(host, str(params["generation"]),
                                                            settled))
                    self.confirming.add(task)
                    task.add_done_callback(self.confirming.discard)
                    result = {"ops": len(ops), "seconds": 0.0}
                elif method == "rollback.confirm":  # the controller's word, as to the agent
                    waiting = self.settled.pop((host, str(params.get("generation"))), None)
                    if waiting is not None:
                        waiting.set()
                        self.realised[host] += 1
                    result = {"confirmed": waiting is not None}
                elif method in ("ticket.drop", "ping", "rollback.release", "rollback.revert"):
                    result = {"host": host, "pid": os.getpid()}
                else:
                    writer.write(frame({"id": request.get("id"), "error": {
                        "code": "NotSupported", "message": f"Unknown method {method!r}"}}))
                    continue
                writer.write(frame({"id": request.get("id"), "result": result}))
                await writer.drain()
        writer.close()

    async def confirm(self, host: str, generation: str, settled: asyncio.Event) -> None:
        """Wait for the controller's word, as the agent does (PUSH_WAIT); then ask over fresh
        connections until the controller says the change stands."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(settled.wait(), PUSH_WAIT)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not settled.is_set():
            writer = None
            try:
                reader, writer = await asyncio.wait_for(asyncio.open_connection(
                    "127.0.0.1", self.args.controller_port, ssl=self.client_ctx[host],
                    server_hostname="", local_addr=(self.addr[host], 0)), TIMEOUT)
                answer = await asyncio.wait_for(call(reader, writer, "confirm",
                                                     {"generation": generation}), TIMEOUT)
                if answer in ("confirmed", "abandoned"):
                    self.settled.pop((host, generation), None)
                    self.realised[host] += answer == "confirmed"
                    return
            except (TimeoutError, OSError, VmknetError, ValueError):
                pass
            finally:
                if writer is not None:
                    writer.close()
            await asyncio.sleep(0.1)

    # -- the parent's commands ----------------------------------------------------------------

    async def commands(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            line = (await loop.run_in_executor(None, sys.stdin.readline)).strip()
            if line in ("", "quit"):
                return
            if line == "reset":
                self.rtts, self.beats, self.beat_errors = [], 0, 0
            elif line == "stats":
                say("stats", **self.stats())

    def stats(self) -> dict[str, Any]:
        rtts = self.rtts
        return {"hosts": len(self.plan), "connected": len(self.connected),
                "beats": self.beats, "errors": self.beat_errors,
                "rttP50": percentile(rtts, 50) if rtts else None,
                "rttP99": percentile(rtts, 99) if rtts else None,
                "rttMax": max(rtts) if rtts else None,
                "tickets": dict(self.tickets), "realised": dict(self.realised),
                "lastError": self.last_error}


async def main_async(args: argparse.Namespace) -> None:
    plan = json.loads(Path(args.plan).read_text(encoding="utf-8"))
    fleet = Fleet(args, plan)
    if args.join:
        await fleet.join_all()
    await fleet.run()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--plan", required=True)
    p.add_argument("--folder", required=True)
    p.add_argument("--controller-port", type=int, required=True)
    p.add_argument("--agent-port", type=int, required=True)
    p.add_argument("--join", action="store_true")
    p.add_argument("--ca", default="", help="the CA fingerprint the join tokens came with")
    p.add_argument("--join-concurrency", type=int, default=16)
    args = p.parse_args(argv)
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # 2 sockets per agent
    asyncio.run(main_async(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
