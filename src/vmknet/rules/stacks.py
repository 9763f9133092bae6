"""NS-1 and NS-5 as invariants of a host's stacks."""

from __future__ import annotations

import re
from collections.abc import Iterator

from ..errors import RuleViolation, VmknetError
from ..model import DEFAULT_STACK, Host
from .paths import netstack_path

CUSTOM_STACK_NAME = re.compile(r"[A-Za-z0-9_-]{1,32}")


def valid_stack_name(stack: str) -> bool:
    """NS-1: letters, digits, '-', '_'; at most 32 characters (built-in names pass too)."""
    return CUSTOM_STACK_NAME.fullmatch(stack) is not None


def check_stacks(name: str, host: Host) -> Iterator[VmknetError]:
    if DEFAULT_STACK not in host.netstacks:
        yield RuleViolation("NS-5", f"Host {name} must keep netstack {DEFAULT_STACK}",
                            path=netstack_path(name, DEFAULT_STACK))
    for stack in host.netstacks:
        if not valid_stack_name(stack):
            yield RuleViolation(
                "NS-1",
                f"Invalid netstack name '{stack}': use letters, digits, '-' or '_', "
                "at most 32 characters",
                path=netstack_path(name, stack),
            )
