"""IP storage configuration of a host: software iSCSI, NFS, software FCoE (SPEC section 7)."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv6Address
from typing import Annotated, Literal

from pydantic import BeforeValidator, Field

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


Psp = Literal["VMW_PSP_FIXED", "VMW_PSP_MRU", "VMW_PSP_RR"]
DEFAULT_PSP: Psp = "VMW_PSP_FIXED"  # VMW_SATP_DEFAULT_AA's, the SATP ESXi gives tgt's disks
DEFAULT_RR_IOPS = 1000  # ESXi's round robin switches paths after 1,000 I/Os by default


class NmpDevice(VmknetModel):
    """Native multipathing of one device (STO-4): its path selection policy and its settings."""

    psp: Psp = DEFAULT_PSP
    iops: int = Field(DEFAULT_RR_IOPS, ge=1, le=2**31 - 1)  # VMW_PSP_RR: I/Os per path
    preferred: str | None = None  # VMW_PSP_FIXED: the preferred path's runtime name


class Storage(VmknetModel):
    iscsi: IscsiAdapter | None = None
    nmp: dict[str, NmpDevice] = {}  # device (naa....) -> its NMP settings, when not defaults
    nfs: dict[DatastoreName, NfsMount] = {}  # datastore name -> mount
    fcoe: list[FcoeAdapter] = []
