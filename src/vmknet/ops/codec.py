"""Operations as data, so the CLI can hand one to the controller, which runs it.

An operation crosses the local door as `{"op": "interface.add", "args": {...}}`:
the name of one of the functions below, and its keyword arguments in JSON form.
Only those functions can be named, and every argument is validated against the
function's own type hints (pydantic), so a caller can ask the controller for
nothing the CLI's own commands could not do, and a wrong or missing argument is
an InvalidArgument before anything runs.
"""

from __future__ import annotations

import functools
import inspect
import typing
from collections.abc import Callable, Mapping
from types import ModuleType
from typing import Any

from pydantic import TypeAdapter, ValidationError

from ..errors import InvalidArgument, VmknetError
from ..events import Event
from . import dvs, host, interface, netstack, nic, storage, vswitch
from .execute import Operation

MODULES: tuple[ModuleType, ...] = (dvs, host, interface, netstack, nic, storage, vswitch)


def _short(module: ModuleType) -> str:
    return module.__name__.rsplit(".", 1)[1]


def _operations() -> dict[str, Callable[..., list[Event]]]:
    """`module.function` for every public function of MODULES that takes the datacenter."""
    table: dict[str, Callable[..., list[Event]]] = {}
    for module in MODULES:
        for name, func in vars(module).items():
            if (name.startswith("_") or not inspect.isfunction(func)
                    or func.__module__ != module.__name__):
                continue
            params = list(inspect.signature(func).parameters)
            if params[:1] == ["dc"]:
                table[f"{_short(module)}.{name}"] = func
    return table


OPERATIONS = _operations()
_NAMES = {func: name for name, func in OPERATIONS.items()}


@functools.cache
def _parameters(name: str) -> dict[str, tuple[TypeAdapter[Any], bool]]:
    """Each keyword parameter of the operation: its validator and whether it is required."""
    func = OPERATIONS[name]
    hints = typing.get_type_hints(func)
    out: dict[str, tuple[TypeAdapter[Any], bool]] = {}
    for param in list(inspect.signature(func).parameters.values())[1:]:
        required = param.default is inspect.Parameter.empty
        out[param.name] = (TypeAdapter(hints[param.name]), required)
    return out


def encode(operation: Operation) -> dict[str, Any]:
    """The data form of `partial(op, **kwargs)`; a bug (not a user error) if it has none."""
    func = getattr(operation, "func", None)
    name = _NAMES.get(func) if func is not None else None
    positional = getattr(operation, "args", None)
    if name is None or positional:
        raise VmknetError(f"Operation {operation!r} cannot be sent to the controller (only "
                          "functools.partial of a vmknet.ops function, keywords only)",
                          code="InternalError")
    params = _parameters(name)
    keywords: Mapping[str, Any] = getattr(operation, "keywords", {})
    return {"op": name, "args": {k: params[k][0].dump_python(v, mode="json")
                                 for k, v in keywords.items()}}


def decode(payload: Mapping[str, Any]) -> Operation:
    """The operation `payload` names, its arguments validated; InvalidArgument otherwise."""
    name, args = payload.get("op"), payload.get("args", {})
    if not isinstance(name, str) or name not in OPERATIONS:
        raise InvalidArgument(f"Unknown operation {str(name)[:80]!r}")
    if not isinstance(args, dict):
        raise InvalidArgument(f"The arguments of {name} must be an object")
    params = _parameters(name)
    unknown = sorted(set(args) - set(params))
    if unknown:
        raise InvalidArgument(f"{name} takes no argument {str(unknown[0])[:80]!r}")
    missing = [k for k, (_, required) in params.items() if required and k not in args]
    if missing:
        raise InvalidArgument(f"{name} needs the argument {missing[0]!r}")
    kwargs: dict[str, Any] = {}
    for key, value in args.items():
        try:
            kwargs[key] = params[key][0].validate_python(value)
        except ValidationError as err:
            first = err.errors()[0]["msg"] if err.errors() else str(err)
            raise InvalidArgument(f"{name}: argument {key!r}: {first}") from None
    return functools.partial(OPERATIONS[name], **kwargs)
