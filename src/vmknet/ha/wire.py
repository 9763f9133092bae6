"""FDM's messages on UDP 8182: one JSON object per datagram, authenticated by HMAC.

    b"FDM1" | HMAC-SHA256(key, body) (32 bytes) | body (JSON, at most MAX_BODY bytes)

The key is the cluster's, handed out by the controller in the desired state
(a host outside the cluster cannot make or read a valid message). A receiver
checks, in this order and before it acts: the length, the magic, the MAC
(constant time), the JSON shape (`decode`), then that the sender is a peer of
the cluster sending from one of its own management addresses and that the
message is newer than the last one it accepted from that sender on that link
(`Replay`: a captured datagram replayed later is refused).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from dataclasses import dataclass
from typing import Any

from ..errors import InvalidArgument

PORT = 8182  # FDM's port on ESXi
MAGIC = b"FDM1"
MAC_LEN = 32
MAX_BODY = 32768  # a heartbeat names up to 64 VMs, each with its disk
MAX_DISK = 1024  # a VM's disk spec, as supervise.kinds accepts it
MAX_DATAGRAM = len(MAGIC) + MAC_LEN + MAX_BODY
SKEW = 30.0  # s: a message stamped further from the receiver's clock is refused
KINDS = ("hb", "restart", "restarted")


class HaWireError(InvalidArgument):
    default_code = "HaProtocolError"


def seal(key: bytes, message: dict[str, Any]) -> bytes:
    body = json.dumps(message, separators=(",", ":"), sort_keys=True).encode()
    if len(body) > MAX_BODY:
        raise HaWireError(f"An FDM message of {len(body)} bytes (at most {MAX_BODY})")
    return MAGIC + hmac.new(key, body, hashlib.sha256).digest() + body


def open_sealed(key: bytes, datagram: bytes) -> dict[str, Any]:
    """The message of a datagram sealed with `key`; raises HaWireError for anything else."""
    if not len(MAGIC) + MAC_LEN < len(datagram) <= MAX_DATAGRAM:
        raise HaWireError(f"A datagram of {len(datagram)} bytes")
    if datagram[:len(MAGIC)] != MAGIC:
        raise HaWireError("Not an FDM datagram")
    mac, body = datagram[len(MAGIC):len(MAGIC) + MAC_LEN], datagram[len(MAGIC) + MAC_LEN:]
    if not hmac.compare_digest(mac, hmac.new(key, body, hashlib.sha256).digest()):
        raise HaWireError("Bad MAC: not sealed with this cluster's key")
    try:
        message = json.loads(body)
    except ValueError as err:
        raise HaWireError(f"Not JSON: {err}") from err
    return decode(message)


def _text(value: Any, limit: int = 64) -> bool:
    return isinstance(value, str) and 0 < len(value) <= limit


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _vm(value: Any) -> bool:
    return (isinstance(value, dict) and set(value) == {"name", "memory", "dirtyRate", "disk"}
            and (value["disk"] is None or (isinstance(value["disk"], str)
                                           and len(value["disk"]) <= MAX_DISK))
            and _text(value["name"]) and isinstance(value["memory"], int)
            and 0 < value["memory"] <= 64 << 30 and isinstance(value["dirtyRate"], int)
            and 0 <= value["dirtyRate"] <= 16 << 30)


_FIELDS: dict[str, dict[str, Any]] = {
    "hb": {"role": lambda v: v in ("primary", "secondary"),
           "primary": lambda v: v is None or _text(v),
           "datastores": lambda v: isinstance(v, int) and 0 <= v <= 1000,
           "heard": lambda v: isinstance(v, list) and len(v) <= 256 and all(map(_text, v)),
           "vms": lambda v: isinstance(v, list) and len(v) <= 64 and all(map(_vm, v)),
           "isolated": lambda v: isinstance(v, bool)},
    "restart": {"vm": _vm, "id": lambda v: _text(v, 40)},
    "restarted": {"vm": _text, "id": lambda v: _text(v, 40),
                  "error": lambda v: v is None or (isinstance(v, str) and len(v) <= 300)},
}
_COMMON = {"kind", "from", "cluster", "to", "at"}


def decode(message: Any) -> dict[str, Any]:
    """Check the message's shape: every key known, every value in range."""
    if not isinstance(message, dict) or message.get("kind") not in KINDS:
        raise HaWireError("An FDM message: an object with a known kind")
    fields = _FIELDS[str(message["kind"])]
    if set(message) != _COMMON | set(fields):
        raise HaWireError(f"An FDM {message['kind']} with keys {sorted(message)}")
    if not (_text(message["from"]) and _text(message["cluster"]) and _number(message["at"])
            and (message["to"] is None or _text(message["to"]))):
        raise HaWireError("An FDM message with a bad sender, cluster, address or time")
    for name, check in fields.items():
        if not check(message[name]):
            raise HaWireError(f"An FDM {message['kind']} with a bad {name}")
    return message


@dataclass
class Replay:
    """The newest `at` accepted per (sender, link): older or equal ones are replays."""

    newest: dict[tuple[str, str, str], float]

    def __init__(self) -> None:
        self.newest = {}

    def fresh(self, sender: str, link: tuple[str, str], at: float,
              now: float | None = None) -> bool:
        now = time.time() if now is None else now
        key = (sender, *link)
        if abs(now - at) > SKEW or at <= self.newest.get(key, float("-inf")):
            return False
        self.newest[key] = at
        return True
