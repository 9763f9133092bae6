"""Build Python data straight from libyaml's parse events: the fast path for plain documents.

PyYAML's loader composes a node tree and calls a Python resolver for every
node; on a 2 MB state file that is ~90% of the load time, while libyaml's
events alone cost a tenth of it. State files are plain block YAML, so this
builder handles exactly that (mappings, sequences, untagged scalars) and
raises `Unsupported` for anything else (tags, anchors, merge keys, complex
keys, several documents): the caller then re-reads with the full loader, so
the result is always what yaml.safe_load would give.
"""

from __future__ import annotations

from typing import Any

import yaml
from yaml.constructor import SafeConstructor
from yaml.events import (
    AliasEvent,
    DocumentStartEvent,
    MappingEndEvent,
    MappingStartEvent,
    NodeEvent,
    ScalarEvent,
    SequenceEndEvent,
    SequenceStartEvent,
    StreamEndEvent,
)
from yaml.nodes import ScalarNode
from yaml.resolver import Resolver

from .limits import deeper
from .yamlio import DuplicateKey

_ParserBase: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

# YAML 1.1 implicit types keyed by first character, exactly as SafeLoader resolves them.
_IMPLICIT = Resolver.yaml_implicit_resolvers
_SCALAR_TAGS = {f"tag:yaml.org,2002:{t}" for t in ("null", "bool", "int", "float", "timestamp")}
_CONSTRUCTOR = SafeConstructor()


class Unsupported(Exception):
    """The document uses a YAML feature this builder leaves to the full loader."""


def load(text: str) -> Any:
    """The single document of `text` (None when there is none)."""
    parser = _ParserBase(text)
    try:
        return _Builder(parser).document()
    finally:
        parser.dispose()


class _Builder:
    def __init__(self, parser: Any) -> None:
        self.next_event = parser.get_event
        self.depth = 0  # open mappings and sequences: bounded before Python's recursion is

    def document(self) -> Any:
        self.next_event()  # StreamStart
        event = self.next_event()
        if isinstance(event, StreamEndEvent):
            return None
        if not isinstance(event, DocumentStartEvent):
            raise Unsupported(type(event).__name__)
        data = self.value(self.next_event())
        self.next_event()  # DocumentEnd
        if not isinstance(self.next_event(), StreamEndEvent):
            raise Unsupported("several documents")  # the full loader reports it with a line
        return data

    def value(self, event: Any) -> Any:
        if isinstance(event, AliasEvent) or (isinstance(event, NodeEvent) and event.anchor):
            raise Unsupported("anchor")
        if isinstance(event, ScalarEvent):
            return scalar(event)
        if event.tag is not None and event.tag != "!":
            raise Unsupported(event.tag)
        if not isinstance(event, MappingStartEvent | SequenceStartEvent):
            raise Unsupported(type(event).__name__)
        self.depth += 1
        too_deep = deeper(self.depth, event.start_mark)
        if too_deep is not None:
            raise too_deep
        try:
            return self.mapping() if isinstance(event, MappingStartEvent) else self.sequence()
        finally:
            self.depth -= 1

    def mapping(self) -> dict[Any, Any]:
        result: dict[Any, Any] = {}
        while not isinstance(event := self.next_event(), MappingEndEvent):
            if not isinstance(event, ScalarEvent):
                raise Unsupported("complex key")
            key = scalar(event)
            if key == "<<" and event.implicit[0]:
                raise Unsupported("merge key")
            if key in result:
                # where the first one was is found by the slow path (report.duplicate_key)
                mark = event.start_mark
                raise DuplicateKey(str(key), mark.line + 1 if mark else None, None)
            result[key] = self.value(self.next_event())
        return result

    def sequence(self) -> list[Any]:
        items: list[Any] = []
        while not isinstance(event := self.next_event(), SequenceEndEvent):
            items.append(self.value(event))
        return items


def scalar(event: ScalarEvent) -> Any:
    if event.tag is not None and event.tag != "!":
        raise Unsupported(event.tag)
    value: str = event.value
    if not event.implicit[0]:
        return value  # quoted or block scalar: always a string
    if value.isascii() and value.isdigit() and (value[0] != "0" or value == "0"):
        return int(value)  # the common case (MTU, VLAN, speed) without the regexes
    for tag, regexp in _IMPLICIT.get(value[:1], []):
        if regexp.match(value):
            if tag not in _SCALAR_TAGS:
                raise Unsupported(tag)
            return _CONSTRUCTOR.yaml_constructors[tag](_CONSTRUCTOR, ScalarNode(tag, value))
    return value
