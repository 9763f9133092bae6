"""The vmknet model: pure objects of SPEC section 1, no I/O."""

from .arrays import ArrayInterface, IscsiTarget, Lun, StorageArray
from .cluster import Cluster
from .datacenter import Datacenter
from .dvs import DistributedSwitch, DvPortGroup
from .host import MANAGEMENT_PORTGROUP, Host, new_host
from .netstack import Netstack, Route
from .physical import Controller, PhysicalNetwork, Router, RouterInterface
from .pnic import PhysicalNic, default_nics
from .services import (
    BUILTIN_STACKS,
    DEFAULT_STACK,
    EXCLUSIVE_STACK_SERVICE,
    PROVISIONING_STACK,
    VMOTION_STACK,
    Service,
)
from .storage import FcoeAdapter, IscsiAdapter, NfsMount, NmpDevice, Storage
from .teaming import LoadBalancing, TeamingPolicy
from .vmknic import IPv4Config, IPv6Config, Vmknic, derived_mac
from .vswitch import PortGroup, StandardSwitch

__all__ = [
    "BUILTIN_STACKS",
    "DEFAULT_STACK",
    "EXCLUSIVE_STACK_SERVICE",
    "MANAGEMENT_PORTGROUP",
    "PROVISIONING_STACK",
    "VMOTION_STACK",
    "ArrayInterface",
    "Cluster",
    "Controller",
    "Datacenter",
    "DistributedSwitch",
    "DvPortGroup",
    "FcoeAdapter",
    "Host",
    "IPv4Config",
    "IPv6Config",
    "IscsiAdapter",
    "IscsiTarget",
    "LoadBalancing",
    "Lun",
    "Netstack",
    "NfsMount",
    "NmpDevice",
    "PhysicalNetwork",
    "PhysicalNic",
    "PortGroup",
    "Route",
    "Router",
    "RouterInterface",
    "Service",
    "StandardSwitch",
    "Storage",
    "StorageArray",
    "TeamingPolicy",
    "Vmknic",
    "default_nics",
    "derived_mac",
    "new_host",
]
