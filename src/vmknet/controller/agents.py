"""The controller's connections to the host agents: one kept per agent, calls, fan-out.

Every call is mutual TLS to the agent's management address (port 443), and the
peer must be that host (`OU=host, CN=<host>`). The connection is kept for the
next call: a change is several calls (its part, the confirmation, release or
revert), and a handshake per call cost more than the change (docs/mgmt-bench.md).
Once a request may have gone out it is never sent again elsewhere: `realise`
must not run twice.
"""

from __future__ import annotations

import contextlib
import select
import socket
import ssl
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from ..errors import NotFound, VmknetError
from ..mgmt import wire
from ..trust import pki
from ..trust.pki import TrustError

CONNECT_TIMEOUT = 5.0
WORK_TIMEOUT = 30.0  # s for an agent to run its part of a change (a new host: ~400 ops)
AT_ONCE = 32  # agents called at once in a fan-out

Links = Callable[[str], list[tuple[str, str]]]  # host -> (address, vmk) of its management


class AgentLinks:
    def __init__(self, client_ctx: ssl.SSLContext, port: int, links: Links) -> None:
        self._ctx, self._port, self._links = client_ctx, port, links
        self._conns: dict[str, ssl.SSLSocket] = {}
        self._locks: dict[str, threading.Lock] = {}

    def call(self, host: str, method: str, params: dict[str, Any],
             timeout: float = CONNECT_TIMEOUT) -> Any:
        """One request to `host`'s agent; a refused or lost call is HostNotConnected."""
        with self._locks.setdefault(host, threading.Lock()):
            tls = self._pooled(host) or self._connect(host)
            try:
                tls.settimeout(timeout)
                return wire.call(tls, method, params)
            except (OSError, wire.WireError) as err:
                self._drop(host)
                raise VmknetError(f"The agent of {host} did not answer {method}: {err}",
                                  code="HostNotConnected", host=host) from err

    def each(self, hosts: list[str], method: str, params: dict[str, Any],
             per_host: dict[str, dict[str, Any]] | None = None,
             timeout: float = WORK_TIMEOUT) -> dict[str, dict[str, Any]]:
        """`method` on each host's agent in parallel; host -> result or {"error": ...}.
        `per_host` adds to `params` for one host."""
        def one(host: str) -> dict[str, Any]:
            try:
                args = {**params, **(per_host or {}).get(host, {})}
                return dict(self.call(host, method, args, timeout) or {})
            except VmknetError as err:
                return {"error": err.to_dict()}

        if not hosts:
            return {}
        with ThreadPoolExecutor(max_workers=min(AT_ONCE, len(hosts))) as pool:
            return dict(zip(hosts, pool.map(one, hosts), strict=True))

    def _pooled(self, host: str) -> ssl.SSLSocket | None:
        tls = self._conns.get(host)
        if tls is None:
            return None
        idle = select.poll()  # not select(): a controller of 1,000 hosts has fds past 1024
        idle.register(tls, select.POLLIN)
        if idle.poll(0):
            self._drop(host)  # readable while idle: the agent closed it (or said too much)
            return None
        return tls

    def _drop(self, host: str) -> None:
        tls = self._conns.pop(host, None)
        if tls is not None:
            with contextlib.suppress(OSError):
                tls.close()

    def _connect(self, host: str) -> ssl.SSLSocket:
        links = self._links(host)
        if not links:
            raise NotFound(f"Host {host} has no management adapter with an address")
        last: Exception | None = None
        for address, _vmk in links:
            raw = None
            try:
                raw = socket.create_connection((address, self._port), CONNECT_TIMEOUT)
                tls = self._ctx.wrap_socket(raw)
                pki.peer(tls, pki.HOST, host)
            except (OSError, TrustError) as err:
                last = err
                if raw is not None:
                    raw.close()
                continue
            self._conns[host] = tls
            return tls
        raise VmknetError(f"The agent of {host} cannot be reached over its management "
                          f"adapters: {last}", code="HostNotConnected", host=host)
