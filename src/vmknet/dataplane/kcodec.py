"""Kernel ops as JSON, for the management channel: the controller arms an agent with the
undo of its host's part of a change (MGMT-2).

Only the op and state classes listed here decode; each field is checked
against its declared type, tuples and frozensets come back as such, and
nothing else is constructed: a decoder that builds what a peer names would be
a remote constructor.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any

from ..errors import InvalidArgument
from . import kops, kstate

_CLASSES: dict[str, type[Any]] = {
    c.__name__: c for c in (
        kops.CreateNamespace, kops.DeleteNamespace, kops.AddLink, kops.DeleteLink,
        kops.ModifyLink, kops.AddAddress, kops.DeleteAddress, kops.AddRoute, kops.DeleteRoute,
        kops.AddRule, kops.DeleteRule, kops.SetSysctl, kops.SetQdisc, kops.SetResolver,
        kops.SetFilter, kstate.Link, kstate.Address, kstate.Route, kstate.Rule, kstate.Qdisc,
        kstate.Resolver, kstate.Filter)}
_OPS = frozenset(_CLASSES) - {"Link", "Address", "Route", "Rule", "Qdisc", "Resolver", "Filter"}
MAX_DEPTH = 6


def encode(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        out = {"type": type(value).__name__}
        for f in dataclasses.fields(value):
            out[f.name] = encode(getattr(value, f.name))
        return out
    if isinstance(value, tuple | list):
        return [encode(v) for v in value]
    if isinstance(value, frozenset | set):
        return sorted((encode(v) for v in value), key=repr)
    return value


def decode_op(data: Any) -> kops.KernelOp:
    op = _decode(data, Any, 0)
    if type(op).__name__ not in _OPS:
        raise InvalidArgument("Not a kernel op", code="ProtocolError")
    return typing.cast(kops.KernelOp, op)


def _decode(data: Any, hint: Any, depth: int) -> Any:
    if depth > MAX_DEPTH:
        raise InvalidArgument("Kernel op nested too deep", code="ProtocolError")
    if isinstance(data, dict) and not (hint is Any or isinstance(hint, type)):
        return _typed(data, hint, depth)  # a union: one of its members must take it
    if isinstance(data, dict):
        cls = _CLASSES.get(str(data.get("type")))
        if cls is None or (hint is not Any and cls is not hint):
            raise InvalidArgument(f"Unknown kernel object {data.get('type')!r}",
                                  code="ProtocolError")
        hints = typing.get_type_hints(cls, vars(kops) | vars(kstate))
        fields = {f.name for f in dataclasses.fields(cls)}
        if set(data) - fields - {"type"}:
            raise InvalidArgument(f"Unexpected fields in {cls.__name__}", code="ProtocolError")
        try:
            return cls(**{k: _decode(v, hints[k], depth + 1)
                          for k, v in data.items() if k != "type"})
        except TypeError as err:
            raise InvalidArgument(f"Bad {cls.__name__}: {err}", code="ProtocolError") from err
    return _typed(data, hint, depth)


def _typed(data: Any, hint: Any, depth: int) -> Any:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if data is None and type(None) in args:
            return None
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _typed(data, arg, depth)
            except InvalidArgument:
                continue
        raise InvalidArgument(f"{data!r} does not fit {hint}", code="ProtocolError")
    if origin in (tuple, frozenset) and isinstance(data, list):
        inner = args[0] if args else Any
        items = [_decode(v, inner, depth + 1) for v in data]
        return tuple(items) if origin is tuple else frozenset(items)
    if hint is Any or typing.get_origin(hint) is typing.Literal:
        return data if not isinstance(data, dict) else _decode(data, Any, depth + 1)
    if isinstance(hint, type) and dataclasses.is_dataclass(hint) and isinstance(data, dict):
        return _decode(data, hint, depth + 1)
    if isinstance(hint, type) and isinstance(data, hint) and not (
            hint is int and isinstance(data, bool)):
        return data
    raise InvalidArgument(f"{data!r} is not a {hint}", code="ProtocolError")
