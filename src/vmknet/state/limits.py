"""Bounds on a desired-state file, checked before anything is built from it.

A YAML file can be small and still cost without bound: aliases of aliases
expand exponentially (a "billion laughs" document of 1 KB is a billion
nodes once pydantic walks it), and deep nesting exhausts the recursion of
the builders. So a file is refused, with its line, when it is

    larger than MAX_BYTES                     (read no further than that),
    nested deeper than MAX_DEPTH              (mappings and sequences),
    expanding aliases to more than MAX_ALIAS_NODES nodes in total.

A real datacenter file stays far below each: 16 MiB is about 30,000 adapters,
a host's configuration is 8 levels deep, and a shared `nics: &nics` block
reused on 100 hosts adds a few thousand nodes.

`scan` walks libyaml's parse events only (no node tree, no Python objects),
counting each alias as the size of the node it names, so the bomb is found
in microseconds per event and never expanded.
"""

from __future__ import annotations

from typing import Any

import yaml
from yaml.events import (
    AliasEvent,
    CollectionEndEvent,
    CollectionStartEvent,
    NodeEvent,
    ScalarEvent,
    StreamEndEvent,
)

from ..errors import FileFormatError

MAX_BYTES = 16 * 2**20
MAX_DEPTH = 64
MAX_ALIAS_NODES = 100_000

_ParserBase: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class LimitExceeded(Exception):
    """The document passes a bound; `line` is 1-based, None for the whole file."""

    def __init__(self, message: str, line: int | None) -> None:
        super().__init__(message)
        self.message = message
        self.line = line


def too_large(size: int, file: str) -> FileFormatError | None:
    if size <= MAX_BYTES:
        return None
    return FileFormatError(f"file too large ({size} bytes; a desired-state file is at most "
                           f"{MAX_BYTES // 2**20} MiB)", file=file, line=None, path="")


def deeper(depth: int, mark: Any) -> LimitExceeded | None:
    """The error for a node at `depth`, when that is past MAX_DEPTH."""
    if depth <= MAX_DEPTH:
        return None
    line = mark.line + 1 if mark is not None else None
    return LimitExceeded(f"nested deeper than {MAX_DEPTH} levels", line)


def scan(text: str) -> None:
    """Raise LimitExceeded for deep nesting or alias expansion; yaml.YAMLError for bad YAML."""
    parser = _ParserBase(text)
    sizes: dict[str, int] = {}  # anchor -> nodes of the anchored node, aliases expanded
    open_nodes: list[tuple[str | None, int]] = []  # (anchor, node count at its start)
    count = expanded = 0
    try:
        while not isinstance(event := parser.get_event(), StreamEndEvent):
            if isinstance(event, AliasEvent):
                size = sizes.get(event.anchor or "", 1)
                count += size
                expanded += size
                if expanded > MAX_ALIAS_NODES:
                    line = event.start_mark.line + 1 if event.start_mark else None
                    raise LimitExceeded(
                        f"aliases expand to more than {MAX_ALIAS_NODES} nodes (at alias "
                        f"*{event.anchor}): write the repeated parts out, or use fewer aliases",
                        line)
            elif isinstance(event, ScalarEvent):
                count += 1
                if event.anchor:
                    sizes[event.anchor] = 1
            elif isinstance(event, CollectionStartEvent):
                count += 1
                open_nodes.append((event.anchor, count))
                err = deeper(len(open_nodes), event.start_mark)
                if err is not None:
                    raise err
            elif isinstance(event, CollectionEndEvent):
                anchor, start = open_nodes.pop()
                if anchor:
                    sizes[anchor] = count - start + 1
            elif isinstance(event, NodeEvent):  # pragma: no cover - every node kind is above
                count += 1
    finally:
        parser.dispose()
