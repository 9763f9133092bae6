"""Events: side effects of an operation on other objects, with the rule that caused them."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Event:
    """E.g. EX-1 taking vMotion away from `hosts/esx01/vmknics/vmk0`."""

    rule: str
    path: str
    message: str
