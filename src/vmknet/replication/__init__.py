"""vSphere Replication (docs/replication.md): CBT on the source, a replication server, NFC to
the target over its vSphereReplicationNFC adapters (PATH-4), RPO scheduling, recovery.

    with ReplicaNfc(dc, lab, "esx04", stores), ReplicationServer(dc, lab, "vr01", sd):
        agent = SourceAgent(cfg, dc, sd).start()
"""

from .config import ReplicationConfig, check
from .recover import recover
from .server import ReplicationServer
from .source import SourceAgent, SyncRecord
from .state import state_dir
from .target import ReplicaNfc

__all__ = ["ReplicaNfc", "ReplicationConfig", "ReplicationServer", "SourceAgent", "SyncRecord",
           "check", "recover", "state_dir"]
