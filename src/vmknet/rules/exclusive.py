"""The exclusive-stack rules (EX-1, EX-3, EX-4): the heart of the seed.

Once a host has an adapter on the `vmotion` stack, only that stack carries
vMotion on that host; the same holds for `vSphereProvisioning` and
provisioning traffic (EX-4).
"""

from __future__ import annotations

from collections.abc import Iterator

from ..errors import RuleViolation, VmknetError
from ..events import Event
from ..model import DEFAULT_STACK, EXCLUSIVE_STACK_SERVICE, Host, Service
from .paths import vmk_path

EX_RULE = {"vmotion": "EX-3", "vSphereProvisioning": "EX-4"}
EX1_RULE = {"vmotion": "EX-1", "vSphereProvisioning": "EX-4"}


def exclusive_stack_for(service: Service) -> str | None:
    for stack, svc in EXCLUSIVE_STACK_SERVICE.items():
        if svc is service:
            return stack
    return None


def refuse_default_stack_tag(name: str, host: Host, vmk_name: str, service: Service
                             ) -> RuleViolation | None:
    """EX-3 / EX-4: the error for tagging `service` on a default-stack adapter, if refused."""
    stack = exclusive_stack_for(service)
    if stack is None or host.vmknics[vmk_name].netstack != DEFAULT_STACK:
        return None
    owners = host.vmknics_on(stack)
    if not owners:
        return None
    return RuleViolation(
        EX_RULE[stack],
        f"Cannot enable {service.tag} on {vmk_name}: host {name} uses the {stack} stack "
        f"({', '.join(owners)})",
        path=vmk_path(name, vmk_name),
    )


def check_exclusive(name: str, host: Host) -> Iterator[VmknetError]:
    for vmk_name, vmk in host.vmknics.items():
        for service in vmk.services:
            err = refuse_default_stack_tag(name, host, vmk_name, service)
            if err is not None:
                yield err


def take_over_service(name: str, host: Host, stack: str) -> list[Event]:
    """EX-1 / EX-4: the first exclusive-stack adapter takes its service from the default stack.

    Called right after an adapter was created on `stack`. Nothing gives the
    service back if the stack later loses its adapters (SPEC EX-1 decision).
    """
    service = EXCLUSIVE_STACK_SERVICE.get(stack)
    if service is None:
        return []
    owner = host.vmknics_on(stack)
    events: list[Event] = []
    for vmk_name, vmk in host.vmknics.items():
        if vmk.netstack == DEFAULT_STACK and service in vmk.services:
            vmk.services = [s for s in vmk.services if s is not service]
            events.append(Event(
                EX1_RULE[stack],
                vmk_path(name, vmk_name),
                f"{service.tag} disabled on {vmk_name}: host {name} now carries "
                f"{service.tag} on the {stack} stack only ({', '.join(owner)})",
            ))
    return events
