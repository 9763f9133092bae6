"""What a migration did: `MigrationReport` (JSON-serialisable, what `migrate()` returns)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

COMPLETED, ABORTED = "completed", "aborted"


@dataclass
class RoundStat:
    round: int  # 1 = the full copy; the last one is sent while the VM is stunned
    pages: int  # pages sent as data
    zero_pages: int  # pages found zero: sent as a ZERO run, no data
    bytes: int  # payload bytes on the wire (ciphertext when encrypted)
    seconds: float
    dirty_left: int  # pages dirtied while this round ran
    stunned: bool = False


@dataclass
class PairStat:
    source_vmk: str
    source_address: str
    target_vmk: str
    target_address: str
    netstack: str
    next_hop: str | None  # the gateway when routed
    bytes: int = 0
    pages: int = 0
    seconds: float = 0.0  # time this stream spent sending
    failed: str | None = None  # why it was dropped mid-migration

    @property
    def gbps(self) -> float:
        return self.bytes * 8 / self.seconds / 1e9 if self.seconds > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self) | {"gbps": round(self.gbps, 3)}


@dataclass
class MigrationReport:
    vm: str
    source: str
    target: str
    result: str = ABORTED
    reason: str = ""
    code: str | None = None  # a rule id (SEC-1) or error code when aborted
    memory: int = 0
    page_size: int = 4096
    dirty_rate: int = 0
    total_seconds: float = 0.0
    downtime_ms: float | None = None  # stun on the source to resume on the target
    max_downtime_ms: float = 100.0
    # The stop rule's last prediction: dirty bytes / rate + fixed costs (barrier, device RTT)
    predicted_downtime_ms: float | None = None
    fixed_cost_ms: float | None = None  # the switchover's fixed costs, measured by the probe
    # Not part of the downtime: the source hashes its frozen memory after the target resumed
    digest_ms: float = 0.0
    # Verify after resume: target resume -> digests compared and committed (the target ran
    # this long before its memory was verified; no post-copy: the source kept every page)
    verify_ms: float | None = None
    verified: bool = False
    verify_note: str = ""
    rounds: list[RoundStat] = field(default_factory=list)
    zero_pages_skipped: int = 0
    throttled: bool = False
    throttle_reason: str = ""
    encryption_mode: str = "opportunistic"
    encrypted: bool = False
    encryption_note: str = ""
    cipher: str | None = None
    crypto_seconds: float = 0.0  # CPU time sealing pages, summed over streams
    digest: str | None = None  # the source's memory digest at switchover
    target_digest: str | None = None  # the target's, kept as pages arrived (equal if verified)
    pairs: list[PairStat] = field(default_factory=list)
    target_pid: int | None = None

    @property
    def completed(self) -> bool:
        return self.result == COMPLETED

    @property
    def bytes(self) -> int:
        return sum(p.bytes for p in self.pairs)

    @property
    def gbps(self) -> float:
        """Throughput of the whole migration (all pairs) over its pre-copy and stun time."""
        busy = sum(r.seconds for r in self.rounds)
        return self.bytes * 8 / busy / 1e9 if busy > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["pairs"] = [p.to_dict() for p in self.pairs]
        data["bytes"] = self.bytes
        data["gbps"] = round(self.gbps, 3)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> MigrationReport:
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        known["rounds"] = [RoundStat(**r) for r in data.get("rounds", [])]
        known["pairs"] = [PairStat(**{k: v for k, v in p.items() if k != "gbps"})
                          for p in data.get("pairs", [])]
        return cls(**known)
