"""vmknet: the VMkernel networking layer (TCP/IP stacks, VMkernel adapters, system traffic).

The public facade is :class:`Inventory`; everything else is reached through it.
"""

from .errors import NoPath, RuleViolation, VmknetError
from .events import Event
from .inventory import Inventory, Plan
from .model import Datacenter, Service

__all__ = [
    "Datacenter",
    "Event",
    "Inventory",
    "NoPath",
    "Plan",
    "RuleViolation",
    "Service",
    "VmknetError",
]
