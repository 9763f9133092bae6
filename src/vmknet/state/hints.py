"""Which fields a model accepts at an error location, to suggest the one a typo meant."""

from __future__ import annotations

import difflib
import types
from collections.abc import Sequence
from typing import Any, Union, get_args, get_origin

from pydantic import BaseModel


def field_names(root: type[BaseModel], loc: Sequence[int | str]) -> list[str]:
    """The aliases (file names) of the model that holds `loc[-1]`, or [] if not a model."""
    tp: Any = root
    for element in loc[:-1]:
        tp = _step(tp, element)
        if tp is None:
            return []
    model = _model_in(tp)
    if model is None:
        return []
    return [info.alias or name for name, info in model.model_fields.items()]


def did_you_mean(word: str, candidates: Sequence[str]) -> str:
    close = difflib.get_close_matches(word, candidates, n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


def _step(tp: Any, element: int | str) -> Any:
    """The type one level down: a model's field, or the item type of a dict or list."""
    model = _model_in(tp)
    if model is not None:
        for name, info in model.model_fields.items():
            if element in (name, info.alias):
                return info.annotation
        return None
    for option in _options(tp):
        origin = get_origin(option)
        if origin is dict:
            return get_args(option)[1]
        if origin is list and isinstance(element, int):
            return get_args(option)[0]
    return None


def _model_in(tp: Any) -> type[BaseModel] | None:
    for option in _options(tp):
        if isinstance(option, type) and issubclass(option, BaseModel):
            return option
    return None


def _options(tp: Any) -> tuple[Any, ...]:
    """`X | None` and `Union[X, Y]` as their members; any other type as itself."""
    if get_origin(tp) in (Union, types.UnionType):
        return get_args(tp)
    return (tp,)
