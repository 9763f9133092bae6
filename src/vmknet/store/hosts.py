"""Each host's desired and observed state, and its liveness, as keys in the etcd store.

    <prefix>/hosts/<host>/desired    {"generation": N, "spec": {...}}    the controller writes
    <prefix>/hosts/<host>/observed   {"generation": N, "status": {...}}  the host's agent writes
    <prefix>/hosts/<host>/alive      the agent's lease keeps it (Lease.attach)

The generation of `desired` goes up by one on every change (a compare-and-
swap on the key's mod_revision, so two controllers never hand out the same
number); the agent reports the generation it realised, and "realised ==
desired" is the host's condition check. Reads return the etcd revision too,
for callers that want to watch from there.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from ..errors import ConcurrentModification, InvalidArgument
from .coordination import Lease
from .etcd_client import Address, Etcd

CAS_TRIES = 50  # many controllers racing on one host's desired state is not expected


@dataclass(frozen=True, slots=True)
class HostRecord:
    generation: int
    data: dict[str, Any]  # the desired "spec" or the observed "status"
    revision: int  # etcd mod_revision of the key


class HostStates:
    def __init__(self, address: Address) -> None:
        self._etcd = Etcd(address)

    @staticmethod
    def key(host: str, kind: str) -> str:
        if not host or "/" in host:  # a "/" would reach another host's (or no host's) keys
            raise InvalidArgument(f"Bad host name {host!r} for the store")
        return f"hosts/{host}/{kind}"

    def set_desired(self, host: str, spec: dict[str, Any]) -> int:
        """Store `spec` as `host`'s desired state; its new generation (previous + 1)."""
        etcd, name = self._etcd, self.key(host, "desired")
        for _ in range(CAS_TRIES):
            current = self.desired(host)
            generation = (current.generation if current else 0) + 1
            value = json.dumps({"generation": generation, "spec": spec}, sort_keys=True)
            ok, _, _ = etcd.txn([etcd.compare(name, "MOD", current.revision if current else 0)],
                                [etcd.put_op(name, value)])
            if ok:
                return generation
        raise ConcurrentModification(f"The desired state of {host} kept changing under "
                                     f"{CAS_TRIES} attempts: try again", host=host)

    def desired(self, host: str) -> HostRecord | None:
        return self._read(host, "desired", "spec")

    def report_observed(self, host: str, generation: int, status: dict[str, Any]) -> int:
        """The agent's report: `generation` realised, with `status`; the etcd revision."""
        value = json.dumps({"generation": generation, "status": status}, sort_keys=True)
        return self._etcd.put(self.key(host, "observed"), value)

    def observed(self, host: str) -> HostRecord | None:
        return self._read(host, "observed", "status")

    def announce(self, lease: Lease, host: str, info: str = "") -> int:
        """Mark `host` alive for as long as `lease` is kept alive; the revision."""
        return lease.attach(self.key(host, "alive"), info)

    def alive(self) -> list[str]:
        """The hosts whose agents' leases are alive, sorted."""
        return sorted(kv.key.split("/")[1] for kv in self._etcd.range("hosts/", prefix=True,
                                                                         keys_only=True)
                      if kv.key.endswith("/alive") and kv.key.count("/") == 2)

    def _read(self, host: str, kind: str, field: str) -> HostRecord | None:
        kv = self._etcd.get(self.key(host, kind))
        if kv is None:
            return None
        doc = json.loads(kv.value)
        return HostRecord(int(doc["generation"]), dict(doc[field]), kv.mod_revision)
