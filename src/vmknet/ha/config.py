"""The cluster's HA settings as one host's agent receives them from the controller.

The controller's desired state carries, for a host of a cluster with `ha:
true` (controller/desired.py `ha_part`): the cluster's name and key, every
member's management addresses and NFS datastores, the isolation addresses
this host pings (`das.isolationaddress0..9`, plus its management stack's
default gateway unless `das.usedefaultisolationaddress` is false), the
isolation response, the restart priorities and admission control. `parse`
checks every field of it (it came over the wire); the agent keeps the last
one on disk so HA goes on while the controller is down.
"""

from __future__ import annotations

import ipaddress
import json
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..errors import InvalidArgument
from ..model.cluster import MAX_HB_DATASTORES, PRIORITY_ORDER

VMK = re.compile(r"vmk[0-9]{1,4}")
MAX_HOSTS = 64  # an HA cluster's members (vSphere: 64)
RESPONSES = ("none", "powerOff", "shutdown")
PRIORITIES = (*PRIORITY_ORDER, "disabled")


@dataclass(frozen=True)
class Datastore:
    name: str
    server: str
    share: str
    version: str
    vmk: str | None = None  # the storage adapter that reaches the server
    source: str | None = None  # its address


@dataclass(frozen=True)
class Member:
    addresses: tuple[str, ...]
    datastores: tuple[Datastore, ...]


@dataclass(frozen=True)
class HaConfig:
    cluster: str
    host: str
    key: bytes
    members: dict[str, Member]
    isolation_addresses: tuple[str, ...] = ()
    isolation_response: str = "none"
    restart_priority: str = "medium"
    vm_priority: dict[str, str] = field(default_factory=dict)
    heartbeat_datastores: int = 2
    admission: bool = True
    failover_percent: int = 25
    host_memory: int = 4096 << 20  # bytes

    def priority(self, vm: str) -> str:
        return self.vm_priority.get(vm, self.restart_priority)

    def peers(self) -> list[str]:
        return sorted(h for h in self.members if h != self.host)

    def to_json(self) -> str:
        data = asdict(self) | {"key": self.key.hex()}
        return json.dumps(data, sort_keys=True)


def _fail(why: str) -> InvalidArgument:
    return InvalidArgument(f"The controller's HA settings: {why}", code="HaProtocolError")


def _name(value: Any) -> str:
    if not isinstance(value, str) or not 0 < len(value) <= 64 or "/" in value:
        raise _fail(f"a bad name {str(value)[:40]!r}")
    return value


def _address(value: Any) -> str:
    try:
        return str(ipaddress.ip_address(str(value)))
    except ValueError:
        raise _fail(f"not an IP address: {str(value)[:40]!r}") from None


def _datastore(raw: Any) -> Datastore:
    if not isinstance(raw, dict) or set(raw) != {"name", "server", "share", "version", "vmk",
                                                 "source"}:
        raise _fail("a datastore: {name, server, share, version, vmk, source}")
    share, version, vmk = raw["share"], raw["version"], raw["vmk"]
    if not isinstance(share, str) or not share.startswith("/") or len(share) > 255:
        raise _fail("a datastore's share: an absolute path")
    if version not in ("3", "4.1"):
        raise _fail("a datastore's NFS version: 3 or 4.1")
    if vmk is not None and (not isinstance(vmk, str) or VMK.fullmatch(vmk) is None):
        raise _fail("a datastore's adapter: vmkN")
    source = None if raw["source"] is None else _address(raw["source"])
    return Datastore(_name(raw["name"]), _address(raw["server"]), share, version, vmk, source)


def _member(raw: Any) -> Member:
    if not isinstance(raw, dict) or set(raw) != {"addresses", "datastores"}:
        raise _fail("a member: {addresses, datastores}")
    addresses, stores = raw["addresses"], raw["datastores"]
    if not isinstance(addresses, list) or not 0 < len(addresses) <= 16:
        raise _fail("a member's management addresses: 1 to 16")
    if not isinstance(stores, list) or len(stores) > 64:
        raise _fail("a member's datastores: at most 64")
    return Member(tuple(map(_address, addresses)), tuple(map(_datastore, stores)))


def parse(raw: Any, host: str) -> HaConfig:
    """The `ha` part of a desired-state reply, checked field by field."""
    keys = {"cluster", "key", "members", "isolationAddresses", "isolationResponse",
            "restartPriority", "vmRestartPriority", "heartbeatDatastores", "admission"}
    if not isinstance(raw, dict) or set(raw) != keys:
        raise _fail(f"an object with the keys {sorted(keys)}")
    key, members = raw["key"], raw["members"]
    if not isinstance(key, str) or len(key) != 64:
        raise _fail("the cluster key: 64 hex digits")
    if not isinstance(members, dict) or not 0 < len(members) <= MAX_HOSTS \
            or host not in members:
        raise _fail(f"the members: 1 to {MAX_HOSTS}, this host among them")
    isolation, prio = raw["isolationAddresses"], raw["vmRestartPriority"]
    if not isinstance(isolation, list) or len(isolation) > 11:
        raise _fail("the isolation addresses: at most 11")
    if raw["isolationResponse"] not in RESPONSES or raw["restartPriority"] not in PRIORITIES:
        raise _fail("a bad isolation response or restart priority")
    if not isinstance(prio, dict) or len(prio) > 4096 or any(
            v not in PRIORITIES for v in prio.values()):
        raise _fail("the per-VM restart priorities")
    count, adm = raw["heartbeatDatastores"], raw["admission"]
    if not isinstance(count, int) or not 0 < count <= MAX_HB_DATASTORES:
        raise _fail("das.heartbeatdsperhost: 2 to 5")
    if not isinstance(adm, dict) or set(adm) != {"enabled", "failoverPercent", "hostMemory"} \
            or not isinstance(adm["failoverPercent"], int) \
            or not 0 <= adm["failoverPercent"] <= 100 \
            or not isinstance(adm["hostMemory"], int) or adm["hostMemory"] <= 0:
        raise _fail("admission control: {enabled, failoverPercent, hostMemory}")
    try:
        secret = bytes.fromhex(key)
    except ValueError:
        raise _fail("the cluster key: 64 hex digits") from None
    return HaConfig(
        cluster=_name(raw["cluster"]), host=host, key=secret,
        members={_name(h): _member(m) for h, m in members.items()},
        isolation_addresses=tuple(dict.fromkeys(map(_address, isolation))),
        isolation_response=raw["isolationResponse"], restart_priority=raw["restartPriority"],
        vm_priority={_name(k): str(v) for k, v in prio.items()},
        heartbeat_datastores=count, admission=bool(adm["enabled"]),
        failover_percent=adm["failoverPercent"], host_memory=adm["hostMemory"])


def save(config: HaConfig, raw: dict[str, Any], path: Path) -> None:
    """Keep the controller's part as it came (parse reads it back after a restart)."""
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"host": config.host, "ha": raw}), encoding="utf-8")
    tmp.chmod(0o600)  # it holds the cluster's key
    tmp.replace(path)


def load(path: Path) -> tuple[HaConfig, dict[str, Any]] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return parse(data["ha"], str(data["host"])), data["ha"]
    except (OSError, ValueError, KeyError, TypeError, InvalidArgument):
        return None
