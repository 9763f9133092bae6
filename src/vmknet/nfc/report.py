"""What a copy did: which adapter pairs carried it and why, bytes on the wire, time, resume."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from ..resolve import Flow


@dataclass(frozen=True, slots=True)
class FlowUsed:
    """One adapter pair of the copy (resolve()'s Flow), with the bytes it carried."""

    source_vmk: str
    source_stack: str
    source_address: str
    target_vmk: str
    target_stack: str
    target_address: str
    reason: str  # Flow.reason: the rule and fallback that chose this pair
    bytes_on_wire: int

    @classmethod
    def of(cls, flow: Flow, wire: int) -> FlowUsed:
        return cls(flow.source.vmknic, flow.source.netstack, str(flow.source.address.ip),
                   flow.target.vmknic, flow.target.netstack, str(flow.target.address.ip),
                   flow.reason, wire)


@dataclass(frozen=True, slots=True)
class CopyReport:
    source: str
    target: str
    flows: list[FlowUsed]
    logical_size: int  # the file's size, holes included
    data_bytes: int  # bytes in the source's data ranges (what a sparse copy must send)
    bytes_on_wire: int  # every NFC frame, both directions, every attempt
    seconds: float
    resumed: bool  # a broken connection was resumed from the .part
    attempts: int
    blocks_sent: int  # distinct blocks that carried data
    blocks_resent: int  # blocks sent again (resume of a torn block, verify mismatch)
    verify_rounds: int

    @property
    def throughput(self) -> float:
        """Logical bytes per second (what the user copied, holes included)."""
        return self.logical_size / self.seconds if self.seconds > 0 else 0.0

    @property
    def wire_throughput(self) -> float:
        return self.bytes_on_wire / self.seconds if self.seconds > 0 else 0.0

    @property
    def sparse_ratio(self) -> float:
        """Wire bytes per logical byte: ~ data/size for a sparse file, ~1 for a full one."""
        return self.bytes_on_wire / self.logical_size if self.logical_size else 0.0

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out.update(throughput=self.throughput, wire_throughput=self.wire_throughput,
                   sparse_ratio=self.sparse_ratio)
        return out

    def summary(self) -> str:
        pairs = "; ".join(f"{f.source_vmk}({f.source_stack}) -> {f.target_vmk}"
                          f"({f.target_stack}): {f.reason}" for f in self.flows)
        return (f"{self.source} -> {self.target}: {self.logical_size} B logical, "
                f"{self.data_bytes} B data, {self.bytes_on_wire} B on the wire in "
                f"{self.seconds:.2f} s ({self.throughput / 1e6:.1f} MB/s logical, "
                f"{self.wire_throughput / 1e6:.1f} MB/s wire), resumed={self.resumed}, "
                f"blocks re-sent {self.blocks_resent}; {pairs}")
