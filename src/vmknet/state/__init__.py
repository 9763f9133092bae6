"""The desired-state file: one YAML format for the whole datacenter.

The format is the datacenter's canonical dump (camelCase names, defaults
left out, hosts/switches/stacks/adapters as mappings keyed by name), so
``loads(dumps(dc)) == dc`` and ``vmknet show`` prints a file ``apply`` accepts.

Loading costs one parse and one model validation; the node tree that maps
an error to its line is only built once something is wrong.
"""

from __future__ import annotations

from pathlib import Path

import yaml
from pydantic import ValidationError

from ..errors import FileFormatError
from ..model import Datacenter
from . import fastyaml, limits, report, yamlio


def loads(text: str, filename: str = "<string>") -> Datacenter:
    """Parse and validate a desired-state document; errors are FileFormatError with a line.

    Bounded (state.limits): too large, too deep or alias-expanding files are refused
    before anything is built from them.
    """
    big = limits.too_large(len(text), filename)
    if big is not None:
        raise big
    try:
        data = _parse(text)
    except limits.LimitExceeded as err:
        raise FileFormatError(err.message, file=filename, line=err.line, path="") from None
    except yamlio.DuplicateKey as dup:
        _bounded(text, filename)  # the report composes the whole tree: only when bounded
        raise report.duplicate_key(text, filename, dup) from None
    except yaml.YAMLError as err:
        raise report.syntax_error(err, filename) from None
    if not isinstance(data, dict):
        raise report.shape_error(data, filename)
    try:
        return Datacenter.model_validate(data)
    except ValidationError as err:
        raise report.validation_error(err, text, filename, Datacenter) from None


def _parse(text: str) -> object:
    try:
        return fastyaml.load(text)
    except fastyaml.Unsupported:
        # anchors, tags, merge keys...: the full loader gives the same data, only slower,
        # once the aliases are known not to explode
        limits.scan(text)
        return yamlio.parse(text)


def _bounded(text: str, filename: str) -> None:
    try:
        limits.scan(text)
    except limits.LimitExceeded as err:
        raise FileFormatError(err.message, file=filename, line=err.line, path="") from None
    except yaml.YAMLError as err:  # a later syntax error the fast path did not reach
        raise report.syntax_error(err, filename) from None


def load_file(path: str | Path) -> Datacenter:
    name = str(path)
    try:
        with open(path, "rb") as f:  # never more than the limit, even from /dev/zero
            raw = f.read(limits.MAX_BYTES + 1)
        big = limits.too_large(max(len(raw), _size(path)), name)
        if big is not None:
            raise big
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise FileFormatError(f"not UTF-8 text ({err.reason} at byte {err.start})",
                              file=name, line=None, path="") from None
    except OSError as err:
        raise FileFormatError(f"cannot read: {err.strerror}", file=name, line=None,
                              path="") from None
    return loads(text, name)


def _size(path: str | Path) -> int:
    try:
        return Path(path).stat().st_size
    except OSError:
        return 0


def canonical(dc: Datacenter) -> dict[str, object]:
    """The file format as data: what `dumps` writes and what the diff compares."""
    data: dict[str, object] = dc.model_dump(mode="json", by_alias=True, exclude_defaults=True)
    return data


def dumps(dc: Datacenter) -> str:
    """The desired-state text of `dc` (what `vmknet show` prints)."""
    return yamlio.emit(canonical(dc))


__all__ = ["canonical", "dumps", "load_file", "loads"]
