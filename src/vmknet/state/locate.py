"""Find where in a YAML file an object path lives: only used once loading has failed.

Pydantic reports a location as a tuple of field aliases, keys and list
indexes (`('hosts', 'esx01', 'vmknics', 'vmk2', 'mtu')`); walking the same
keys down the composed node tree gives the line to show the user.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from yaml.nodes import MappingNode, Node, SequenceNode

from .yamlio import MERGE_TAG, DuplicateKey, duplicate_in


@dataclass(frozen=True)
class Location:
    line: int | None  # 1-based
    path: str  # "hosts/esx01/vmknics/vmk2/mtu"


def locate(root: Node | None, loc: Sequence[int | str], *, missing: bool = False) -> Location:
    """The deepest node of `loc` present in the file, and the part of `loc` that names it.

    Elements past the deepest node are dropped (pydantic appends union member
    names such as `ip_v4_address` that are not in the file), except the last
    one of a `missing` error: the absent field is what the user must add.
    """
    node, line, found = root, _line(root), 0
    for element in loc:
        child = _child(node, element)
        if child is None:
            break
        key_line, node = child
        line, found = key_line, found + 1
    names = [str(e) for e in loc[:found]]
    if missing and found == len(loc) - 1:
        names.append(str(loc[-1]))
    return Location(line, "/".join(names))


def first_duplicate(root: Node | None) -> tuple[DuplicateKey, str] | None:
    """The first duplicate key in document order and its path (`hosts/esx01/vmknics/vmk2`)."""
    for path, node in _mappings(root, ()):
        dup = duplicate_in(node)
        if dup is not None:
            return dup, "/".join((*path, dup.key))
    return None


def _child(node: Node | None, element: int | str) -> tuple[int, Node] | None:
    """(line of the key or item, value node) of `element` inside `node`."""
    if isinstance(node, MappingNode):
        for key, value in node.value:
            if key.tag == MERGE_TAG:
                merged = _child(value, element)
                if merged is not None:
                    return merged
            elif key.value == str(element):
                return key.start_mark.line + 1, value
    elif isinstance(node, SequenceNode) and isinstance(element, int) and (
        0 <= element < len(node.value)
    ):
        item: Node = node.value[element]
        return item.start_mark.line + 1, item
    return None


def _mappings(
    node: Node | None, path: tuple[str, ...]
) -> Iterator[tuple[tuple[str, ...], MappingNode]]:
    # Aliases compose to the very same node object: `seen` keeps a recursive anchor finite.
    seen: set[int] = set()
    stack: list[tuple[tuple[str, ...], Node | None]] = [(path, node)]
    while stack:
        here, current = stack.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, MappingNode):
            yield here, current
            children = [((*here, str(k.value)), v) for k, v in current.value]
        elif isinstance(current, SequenceNode):
            children = [((*here, str(i)), v) for i, v in enumerate(current.value)]
        else:
            continue
        stack.extend(reversed(children))


def _line(node: Node | None) -> int | None:
    return node.start_mark.line + 1 if node is not None else None
