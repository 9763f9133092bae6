"""Talking to etcd: the `etcd://host:port[/prefix]` address and a few typed KV calls.

The transport is etcd3gw (OpenStack's maintained client of etcd's v3 JSON
gateway: /v3/kv/range, /v3/kv/txn, /v3/lease/...; docs/store.md says why
this one). Its `transaction` and `post` take the gateway's JSON as is, so
this module builds that JSON (keys and values base64, int64 as strings)
and turns its failures into `StoreUnavailable`, once, at this seam.

Every key handed to or returned from `Etcd` is relative to the prefix:
`Etcd("etcd://h:2379/lab1").put("meta/lab", ...)` writes `/lab1/meta/lab`.
"""

from __future__ import annotations

import base64
import contextlib
import ctypes
import os
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, cast
from urllib.parse import urlsplit

from etcd3gw.client import Etcd3Client
from etcd3gw.exceptions import Etcd3Exception

from ..errors import InvalidArgument
from .base import StoreUnavailable

SCHEME = "etcd"
DEFAULT_PORT = 2379
DEFAULT_PREFIX = "/vmknet"
REQUEST_TIMEOUT_S = 10.0

Op = dict[str, Any]  # one compare or request of the gateway's /v3/kv/txn
CLONE_NEWNET = 0x40000000
_home_ns: int | None = None  # see pin_namespace
_libc = ctypes.CDLL(None, use_errno=True)


def pin_namespace() -> None:
    """Reach etcd from the calling thread's network namespace from now on, whichever
    namespace a later thread of this process is in.

    The lab's controller enters its own namespace (to listen on the management VLAN), where
    127.0.0.1 is not the machine's; the etcd it was given lives in the namespace it started
    in. setns(2) moves one thread only, so each call switches its thread there and back.
    """
    global _home_ns
    if _home_ns is None:
        _home_ns = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)


def _setns(fd: int) -> None:
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"setns: {os.strerror(err)}")


@contextlib.contextmanager
def _at_home() -> Iterator[None]:
    """The calling thread in the pinned namespace for the block (nothing when not pinned)."""
    if _home_ns is None:
        yield
        return
    here = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    try:
        if os.fstat(here).st_ino == os.fstat(_home_ns).st_ino:
            yield  # already there (the main thread before it entered, or a root thread)
            return
        _setns(_home_ns)
        try:
            yield
        finally:
            _setns(here)
    finally:
        os.close(here)


@dataclass(frozen=True, slots=True)
class Address:
    host: str
    port: int
    prefix: str  # no trailing slash, e.g. "/vmknet"

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{SCHEME}://{host}:{self.port}{self.prefix}"


def parse(location: str) -> Address:
    """`etcd://host[:port][/prefix]` (also the `etcd:/host...` a pathlib.Path makes of it)."""
    text = re.sub(rf"^{SCHEME}:/+", f"{SCHEME}://", str(location))
    try:
        url = urlsplit(text)
        port = url.port or DEFAULT_PORT
    except ValueError as err:
        raise InvalidArgument(f"Bad etcd store address {location!r} ({err}): "
                              f"expected {SCHEME}://HOST[:PORT][/PREFIX]") from err
    if url.scheme != SCHEME or not url.hostname or url.query or url.fragment:
        raise InvalidArgument(f"Bad etcd store address {location!r}: "
                              f"expected {SCHEME}://HOST[:PORT][/PREFIX]")
    parts = [p for p in url.path.split("/") if p]
    if any(p in (".", "..") for p in parts):
        # A path would fold them away (pathlib, click): the store would change under you.
        raise InvalidArgument(f"Bad etcd store address {location!r}: a prefix has no '.' or "
                              "'..' parts")
    prefix = "/" + "/".join(parts) if parts else DEFAULT_PREFIX
    return Address(url.hostname, port, prefix)


def b64(text: str | bytes) -> str:
    raw = text.encode() if isinstance(text, str) else text
    return base64.b64encode(raw).decode("ascii")


def unb64(text: str) -> str:
    return base64.b64decode(text).decode()


def range_end_of(prefix: str) -> str:
    """The range end that selects every key starting with `prefix` (etcd's prefix idiom)."""
    raw = bytearray(prefix.encode())
    raw[-1] += 1  # keys here are ASCII: the last byte is never 0xff
    return bytes(raw).decode()


@dataclass(frozen=True, slots=True)
class KeyValue:
    key: str  # relative to the prefix
    value: str
    mod_revision: int
    create_revision: int
    lease: int


class Etcd:
    """One client (one HTTP session: not shared between threads) on one prefix."""

    def __init__(self, address: Address, timeout: float = REQUEST_TIMEOUT_S) -> None:
        self.address = address
        # api_path fixed: etcd >= 3.4 serves /v3/; saves the discovery round trip.
        self._client = Etcd3Client(host=address.host, port=address.port,
                                   timeout=timeout, api_path="/v3/")

    def key(self, name: str) -> str:
        return f"{self.address.prefix}/{name}"

    # --- building transactions -------------------------------------------------------------

    def put_op(self, name: str, value: str, lease: int = 0) -> Op:
        request: Op = {"key": b64(self.key(name)), "value": b64(value)}
        if lease:
            request["lease"] = str(lease)
        return {"request_put": request}

    def delete_op(self, name: str, prefix: bool = False, end: str | None = None) -> Op:
        request: Op = {"key": b64(self.key(name))}
        if prefix:
            request["range_end"] = b64(range_end_of(self.key(name)))
        elif end is not None:
            request["range_end"] = b64(self.key(end))
        return {"request_delete_range": request}

    def range_op(self, name: str) -> Op:
        return {"request_range": {"key": b64(self.key(name))}}

    def compare(self, name: str, target: str, value: int | str) -> Op:
        """`target` is CREATE, MOD, VERSION or VALUE (etcd's names); result EQUAL."""
        field = {"CREATE": "create_revision", "MOD": "mod_revision",
                 "VERSION": "version", "VALUE": "value"}[target]
        wanted = b64(str(value)) if target == "VALUE" else str(value)
        return {"key": b64(self.key(name)), "target": target, "result": "EQUAL", field: wanted}

    # --- calls -----------------------------------------------------------------------------

    def txn(self, compare: Sequence[Op], success: Sequence[Op],
            failure: Sequence[Op] = ()) -> tuple[bool, list[list[KeyValue]], int]:
        """(succeeded, the kvs of each range request of the branch taken, revision)."""
        body = {"compare": list(compare), "success": list(success), "failure": list(failure)}
        answer = self._call(lambda: self._client.transaction(body))
        found = [self._kvs(r["response_range"]) for r in answer.get("responses", [])
                 if "response_range" in r]
        return bool(answer.get("succeeded")), found, int(answer["header"]["revision"])

    def get(self, name: str) -> KeyValue | None:
        kvs = self.range(name)
        return kvs[0] if kvs else None

    def range(self, name: str, prefix: bool = False, limit: int = 0,
              descending: bool = False, keys_only: bool = False) -> list[KeyValue]:
        """The keys at `name` (or under it, `prefix`); `keys_only` leaves values empty."""
        body: Op = {"key": b64(self.key(name))}
        if keys_only:
            body["keys_only"] = True
        if prefix:
            body["range_end"] = b64(range_end_of(self.key(name)))
        if limit:
            body["limit"] = str(limit)
        if descending:
            body["sort_order"], body["sort_target"] = "DESCEND", "KEY"
        return self._kvs(self._post("kv/range", body))

    def put(self, name: str, value: str, lease: int = 0) -> int:
        """The revision of the write."""
        request = self.put_op(name, value, lease)["request_put"]
        return int(self._post("kv/put", request)["header"]["revision"])

    def delete(self, name: str, prefix: bool = False) -> int:
        """How many keys went."""
        request = self.delete_op(name, prefix)["request_delete_range"]
        return int(self._post("kv/deleterange", request).get("deleted", 0))

    def grant(self, ttl: int) -> int:
        """A new lease's id; etcd may round a very short `ttl` up to its minimum."""
        return int(self._post("lease/grant", {"TTL": str(ttl), "ID": "0"})["ID"])

    def refresh(self, lease: int) -> int:
        """Keep `lease` alive once; its remaining TTL, or -1 when it has already expired."""
        answer = self._post("lease/keepalive", {"ID": str(lease)})
        return int(answer.get("result", {}).get("TTL", -1))

    def revoke(self, lease: int) -> None:
        """Ends `lease` and deletes its keys; an unknown (expired) lease is not an error."""
        try:
            with _at_home():
                self._client.post(self._client.get_url("kv/lease/revoke"),
                                  json={"ID": str(lease)})
        except Etcd3Exception as err:
            if "not found" not in str(err.detail_text):
                raise self._unavailable(err) from err
        except OSError as err:  # requests' errors are OSErrors
            raise self._unavailable(err) from err

    # --- plumbing --------------------------------------------------------------------------

    def _post(self, path: str, body: Op) -> dict[str, Any]:
        return self._call(lambda: self._client.post(self._client.get_url(path), json=body))

    def _call(self, call: Any) -> dict[str, Any]:
        try:
            with _at_home():
                return cast(dict[str, Any], call())
        except (Etcd3Exception, OSError, ValueError) as err:
            raise self._unavailable(err) from err

    def _unavailable(self, err: Exception) -> StoreUnavailable:
        detail = getattr(err, "detail_text", None) or str(err) or type(err).__name__
        return StoreUnavailable(
            f"The etcd store {self.address.url} did not answer ({detail}): is etcd running "
            "there? check --store / VMKNET_STORE", url=self.address.url)

    def _kvs(self, answer: dict[str, Any]) -> list[KeyValue]:
        cut = len(self.address.prefix) + 1
        return [KeyValue(unb64(kv["key"])[cut:], unb64(kv.get("value", "")),
                         int(kv.get("mod_revision", 0)), int(kv.get("create_revision", 0)),
                         int(kv.get("lease", 0)))
                for kv in answer.get("kvs", [])]
