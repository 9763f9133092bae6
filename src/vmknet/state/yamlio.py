"""YAML reading and writing for desired-state files, on libyaml when it is installed.

The happy path is one parse with the C parser; only the constructor runs in
Python. Duplicate keys are refused there, because PyYAML would silently keep
the last one and a typo'd copy of `vmk2:` would quietly replace the first.
"""

from __future__ import annotations

from typing import Any

import yaml
from yaml.nodes import MappingNode, Node

# libyaml is 5-10x faster on a 4 MB file; pure-Python PyYAML is the fallback.
_LoaderBase: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_DumperBase: Any = getattr(yaml, "CSafeDumper", yaml.SafeDumper)

MERGE_TAG = "tag:yaml.org,2002:merge"


class DuplicateKey(yaml.YAMLError):
    """A mapping names the same key twice; `line` is 1-based, of the second occurrence."""

    def __init__(self, key: str, line: int | None, first_line: int | None) -> None:
        first = f" (first at line {first_line})" if first_line is not None else ""
        super().__init__(f"duplicate key '{key}'{first}")
        self.key = key
        self.line = line
        self.first_line = first_line


def duplicate_in(node: MappingNode) -> DuplicateKey | None:
    """The first key written twice in `node`, compared as written (tag and text).

    Merge keys (`<<: *anchor`) are skipped: overriding merged keys is their purpose.
    """
    seen: dict[tuple[str, str], Node] = {}
    for key, _ in node.value:
        if key.tag == MERGE_TAG or not isinstance(key.value, str):
            continue
        ident = (key.tag, key.value)
        first = seen.setdefault(ident, key)
        if first is not key:
            return DuplicateKey(key.value, key.start_mark.line + 1, first.start_mark.line + 1)
    return None


class StrictLoader(_LoaderBase):  # type: ignore[misc]
    """Safe loader that refuses duplicate mapping keys."""

    def construct_mapping(self, node: MappingNode, deep: bool = False) -> dict[Any, Any]:
        if isinstance(node, MappingNode):
            dup = duplicate_in(node)
            if dup is not None:
                raise dup
        result: dict[Any, Any] = super().construct_mapping(node, deep)
        return result


class PlainDumper(_DumperBase):  # type: ignore[misc]
    """Never writes `&id001` anchors: a state file is read by people, not just parsers."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def parse(text: str) -> Any:
    """The document's data; raises yaml.YAMLError (MarkedYAMLError carries the line)."""
    return yaml.load(text, Loader=StrictLoader)  # StrictLoader is a SafeLoader


def compose(text: str) -> Node | None:
    """The node tree (with line marks), for locating an error after the fast path failed."""
    node: Node | None = yaml.compose(text, Loader=_LoaderBase)
    return node


def emit(data: Any) -> str:
    text: str = yaml.dump(
        data, Dumper=PlainDumper, sort_keys=False, default_flow_style=False,
        allow_unicode=True, width=1 << 16,
    )
    return text
