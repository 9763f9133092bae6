"""IP storage configuration of a host: software iSCSI, NFS, software FCoE (SPEC section 7)."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv6Address
from typing import Annotated, Literal

from pydantic import BeforeValidator

from .base import VmknetModel
from .names import DatastoreName


class IscsiAdapter(VmknetModel):
    """The software iSCSI adapter (`vmhba64` and up) and its port bindings (STO-1)."""

    name: str = "vmhba64"
    bound_vmknics: list[str] = []
    targets: list[IPv4Address | IPv6Address] = []  # send-target portals


def _as_text(value: object) -> object:
    # YAML reads `version: 4.1` as a number; the version is a name, not a quantity.
    return str(value) if isinstance(value, int | float) else value


class NfsMount(VmknetModel):
    version: Annotated[Literal["3", "4.1"], BeforeValidator(_as_text)] = "3"
    servers: list[str] = []
    share: str = "/"


class FcoeAdapter(VmknetModel):
    vmknic: str
    vmnic: str


class Storage(VmknetModel):
    iscsi: IscsiAdapter | None = None
    nfs: dict[DatastoreName, NfsMount] = {}  # datastore name -> mount
    fcoe: list[FcoeAdapter] = []
