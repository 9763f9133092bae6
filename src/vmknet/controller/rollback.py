"""The realiser's side of network rollback (MGMT-2): arm the agents, then wait for them.

`KernelRealiser` uses this when the lab's controller runs: before the first
op, each host with ops in the plan gets the undo of its part, through the
controller, over mutual TLS (no host is changed that cannot be armed); after
the ops ran and the kernel shows them, every armed agent must confirm over a
fresh management connection within the rollback timeout. A host that cannot
reverts its part itself; the apply then undoes the rest (fabric and hosts that
confirmed) and the change is refused as REQ-5, with the NetworkRollbackEvent
the agent reported.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from typing import Any

from ..dataplane import kcodec
from ..dataplane.apply import ApplyResult
from ..dataplane.kstate import KernelState
from ..dataplane.ownership import partition
from ..errors import RuleViolation
from .changes import REPORT_GRACE
from .client import ControllerClient
from .service import rollback_event

_WHY = {"rolledBack": "reverted by its agent"}


def cut_off(verdict: dict[str, Any], timeout: float, generation: str) -> RuleViolation:
    """REQ-5 for the hosts of `verdict` that did not confirm, with their agents' reports."""
    states: dict[str, str] = verdict["hosts"]
    lost = sorted(h for h, s in states.items() if s != "confirmed")
    how = ", ".join(f"{h} ({_WHY.get(states[h], 'no report')})" for h in lost)
    return RuleViolation(
        "REQ-5",
        f"The change cuts the controller off from the management adapters of {how}: "
        f"rolled back: no agent confirmation within {timeout:g} s (MGMT-2)",
        hosts=lost, generation=generation, rolled_back=True,
        rollbacks=[rollback_event(h, r) for h, r in verdict["reports"].items()])


class AgentRollback:
    def __init__(self, lab: str, hosts: Sequence[str], desired: KernelState,
                 timeout: float, armable: Sequence[str]) -> None:
        self.lab, self.hosts, self.desired, self.timeout = lab, list(hosts), desired, timeout
        # Hosts whose agent is connected now; a host without one (just added, agent not
        # started) has nothing an agent could take back: REQ-5's echo guards it instead.
        self.armable = set(armable)
        self.client = ControllerClient(lab, timeout=timeout + REPORT_GRACE + 10)
        self.generation: str | None = None
        self.result: ApplyResult | None = None
        self.owned: dict[str, list[int]] = {}

    def before_execute(self, result: ApplyResult, current: KernelState) -> None:
        owners = partition(result.ops, self.lab, self.hosts, [current, self.desired])
        self.owned = {h: idx for h, idx in owners.items() if h is not None and h in self.armable}
        if not self.owned:
            return
        undo = {h: [kcodec.encode(result.ops[i].inverse()) for i in reversed(idx)]
                for h, idx in self.owned.items()}
        generation = secrets.token_hex(8)
        self.client.call("rollback.arm", {"generation": generation, "undo": undo,
                                          "timeout": self.timeout})
        self.generation, self.result = generation, result

    def post_check(self) -> None:
        if self.generation is None or self.result is None:
            return
        self.client.call("rollback.applied", {"generation": self.generation})
        verdict = self.client.call("rollback.wait", {
            "generation": self.generation, "timeout": self.timeout + REPORT_GRACE})
        states: dict[str, str] = verdict["hosts"]
        lost = sorted(h for h, s in states.items() if s != "confirmed")
        if not lost:
            # The change stands: the agents drop its undo (else they would keep asking).
            self.client.call("rollout.release", {"generation": self.generation,
                                                 "hosts": sorted(self.owned)})
            return
        for host in lost:
            if states[host] == "rolledBack":
                self.result.undone_elsewhere.update(self.owned[host])
        raise cut_off(verdict, self.timeout, self.generation)

    def abandon(self) -> None:
        """The apply failed on its own: the armed agents stand down (its rollback undid all)."""
        if self.generation is not None:
            self.client.call("rollback.abandon", {"generation": self.generation})
