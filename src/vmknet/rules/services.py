"""SVC-2..5: which services an adapter may carry, by stack and per host."""

from __future__ import annotations

from collections.abc import Iterator

from ..errors import InvalidArgument, RuleViolation, VmknetError
from ..model import BUILTIN_STACKS, DEFAULT_STACK, EXCLUSIVE_STACK_SERVICE, Host, Service
from .paths import vmk_path

SERVICE_RULE = {"vmotion": "SVC-2", "vSphereProvisioning": "SVC-3"}


def check_services(name: str, host: Host) -> Iterator[VmknetError]:
    ft: list[str] = []
    for vmk_name, vmk in host.vmknics.items():
        path = vmk_path(name, vmk_name)
        if len(set(vmk.services)) != len(vmk.services):
            yield InvalidArgument(f"Vmknic {vmk_name} lists a service twice", path=path)
        implied = EXCLUSIVE_STACK_SERVICE.get(vmk.netstack)
        if implied is not None:
            extra = [s for s in vmk.services if s != implied]
            if extra:
                yield RuleViolation(
                    SERVICE_RULE[vmk.netstack],
                    f"Vmknic {vmk_name} is on the {vmk.netstack} stack and carries "
                    f"{implied.tag} only: it cannot be tagged with {extra[0].tag}",
                    path=path,
                )
        elif vmk.netstack not in BUILTIN_STACKS and vmk.services:
            yield RuleViolation(
                "SVC-4",
                f"Vmknic {vmk_name} is on custom stack {vmk.netstack}, which carries no tagged "
                f"service: remove {vmk.services[0].tag} or use {DEFAULT_STACK}",
                path=path,
            )
        if Service.FT_LOGGING in vmk.services:
            ft.append(vmk_name)
    if len(ft) > 1:
        yield RuleViolation(
            "SVC-5",
            f"Host {name} can have one Fault Tolerance logging adapter only "
            f"({', '.join(ft)} are tagged): untag all but one",
            path=vmk_path(name, ft[1]),
        )
