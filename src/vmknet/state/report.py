"""Turn YAML and pydantic errors into one-line FileFormatErrors: `file:line: path: message`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from ..errors import FileFormatError
from . import yamlio
from .hints import did_you_mean, field_names
from .locate import first_duplicate, locate


def syntax_error(err: yaml.YAMLError, file: str) -> FileFormatError:
    """A YAML parse error; libyaml's marks are 0-based, users count lines from 1."""
    if isinstance(err, yaml.MarkedYAMLError):
        mark = err.problem_mark or err.context_mark
        message = err.problem or err.context or "syntax error"
        if err.problem and err.context:
            message += f" ({err.context})"
        column = f" at column {mark.column + 1}" if mark is not None else ""
        line = mark.line + 1 if mark is not None else None
        return FileFormatError(f"invalid YAML{column}: {message}", file=file, line=line, path="")
    return FileFormatError(f"invalid YAML: {_one_line(str(err))}", file=file, line=None, path="")


def duplicate_key(text: str, file: str, fallback: yamlio.DuplicateKey) -> FileFormatError:
    """Re-parse to name the mapping that holds the duplicate (the fast path has no paths)."""
    found = first_duplicate(yamlio.compose(text))
    dup, path = found if found is not None else (fallback, "")
    return FileFormatError(str(dup), file=file, line=dup.line, path=path)


def validation_error(
    err: ValidationError, text: str, file: str, model: type[BaseModel]
) -> FileFormatError:
    """The first schema error, at the line of the deepest node of its location."""
    root = yamlio.compose(text)
    errors = err.errors(include_url=False)
    located = [(locate(root, e["loc"], missing=e["type"] == "missing"), e) for e in errors]
    where = located[0][0]
    # A union reports one error per member at the same place: show them together.
    same = [e for loc, e in located if loc == where]
    message = " | ".join(dict.fromkeys(_message(e, model) for e in same)) + _got(same[0])
    others = len({loc for loc, _ in located}) - 1
    if others:
        message += f" (and {others} more error{'s' if others > 1 else ''})"
    return FileFormatError(message, file=file, line=where.line, path=where.path)


def shape_error(data: Any, file: str) -> FileFormatError:
    """The document is empty or its top level is not a mapping of datacenter fields."""
    if data is None:
        return FileFormatError(
            "file is empty: expected a datacenter mapping (hosts, clusters, distributedSwitches)",
            file=file, line=None, path="",
        )
    kind = type(data).__name__
    return FileFormatError(
        f"the top level must be a mapping (the datacenter), not a {kind}",
        file=file, line=1, path="",
    )


def _message(error: ErrorDetails, model: type[BaseModel]) -> str:
    loc: Sequence[int | str] = error["loc"]
    if error["type"] == "extra_forbidden" and loc:
        field = str(loc[-1])
        return f"unknown field '{field}'" + did_you_mean(field, field_names(model, loc))
    return error["msg"].removeprefix("Value error, ")


def _got(error: ErrorDetails) -> str:
    """The offending value when it is short enough to read on the same line."""
    value = error.get("input")
    if error["type"] in ("missing", "extra_forbidden"):
        return ""
    if isinstance(value, str) and repr(value) in error["msg"]:
        return ""  # a name rule's message quotes the name already
    if isinstance(value, str | int | float | bool) and len(repr(value)) <= 60:
        return f" (got {value!r})"
    return ""


def _one_line(text: str) -> str:
    return " ".join(text.split())

