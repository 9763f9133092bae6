"""System traffic services (adapter tags), SPEC section 3, and built-in stack names (NS-1)."""

from __future__ import annotations

from enum import StrEnum


class Service(StrEnum):
    """A service an adapter carries; the value is vSphere's API name."""

    MANAGEMENT = "management"
    VMOTION = "vmotion"
    PROVISIONING = "vSphereProvisioning"
    FT_LOGGING = "faultToleranceLogging"
    REPLICATION = "vSphereReplication"
    REPLICATION_NFC = "vSphereReplicationNFC"
    VSAN = "vsan"
    VSAN_WITNESS = "vsanWitness"
    BACKUP_NFC = "vSphereBackupNFC"
    NVME_TCP = "nvmeTcp"

    @property
    def tag(self) -> str:
        """The esxcli tag name (`esxcli network ip interface tag add -t ...`)."""
        return ESXCLI_TAGS[self]

    @classmethod
    def parse(cls, text: str) -> Service:
        """The API name, the esxcli tag or a short name (`ft`, `nfc`), any case."""
        key = text.strip().lower()
        short = SHORT_NAMES.get(key.replace("-", "").replace("_", ""))
        if short is not None:
            return cls(short)
        for svc in cls:
            if key in (svc.value.lower(), svc.tag.lower()):
                return svc
        names = ", ".join([s.tag for s in cls] + sorted(SHORT_NAMES))
        raise ValueError(f"unknown service '{text}' (one of: {names})")


# Short names an administrator types, beyond the API names and esxcli tags.
SHORT_NAMES: dict[str, str] = {
    "mgmt": "management",
    "provisioning": "vSphereProvisioning",
    "nfc": "vSphereProvisioning",
    "ft": "faultToleranceLogging",
    "ftlogging": "faultToleranceLogging",
    "replication": "vSphereReplication",
    "replicationnfc": "vSphereReplicationNFC",
    "witness": "vsanWitness",
    "backup": "vSphereBackupNFC",
    "backupnfc": "vSphereBackupNFC",
    "nvme": "nvmeTcp",
}

ESXCLI_TAGS: dict[Service, str] = {
    Service.MANAGEMENT: "Management",
    Service.VMOTION: "VMotion",
    Service.PROVISIONING: "vSphereProvisioning",
    Service.FT_LOGGING: "faultToleranceLogging",
    Service.REPLICATION: "vSphereReplication",
    Service.REPLICATION_NFC: "vSphereReplicationNFC",
    Service.VSAN: "VSAN",
    Service.VSAN_WITNESS: "VSANWitness",
    Service.BACKUP_NFC: "vSphereBackupNFC",
    Service.NVME_TCP: "NVMeTCP",
}

# SPEC section 3: the one service that allows a single adapter per host (SVC-5).
SINGLE_ADAPTER_SERVICES = frozenset({Service.FT_LOGGING})

DEFAULT_STACK = "defaultTcpipStack"
VMOTION_STACK = "vmotion"
PROVISIONING_STACK = "vSphereProvisioning"
BUILTIN_STACKS = (DEFAULT_STACK, VMOTION_STACK, PROVISIONING_STACK)

# SVC-2 / SVC-3: the exclusive stacks and the one service each carries.
EXCLUSIVE_STACK_SERVICE: dict[str, Service] = {
    VMOTION_STACK: Service.VMOTION,
    PROVISIONING_STACK: Service.PROVISIONING,
}

# SPEC section 10: the TCP ports a user looks for.
SERVICE_PORTS: dict[Service, tuple[int, ...]] = {
    Service.MANAGEMENT: (443,),
    Service.VMOTION: (8000,),
    Service.PROVISIONING: (902,),
    Service.FT_LOGGING: (8100, 8200),
    Service.REPLICATION: (31031, 44046),
    Service.REPLICATION_NFC: (902,),
    Service.VSAN: (2233, 12321),
    Service.VSAN_WITNESS: (2233, 12321),
    Service.BACKUP_NFC: (902,),
    Service.NVME_TCP: (4420,),
}
