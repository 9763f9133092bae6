"""Realise a datacenter in a lab's namespaces, all or nothing, with REQ-5's network rollback.

`KernelRealiser.realise(lab, dc)` renders `dc`, applies it with verify on and
then, if the kernel changed, checks from the controller namespace that every
management adapter still answers an ICMP echo. When that fails the apply is
undone (dataplane.apply rolls back the kernel) and RuleViolation("REQ-5") is
raised, like ESXi's network rollback; the inventory records the event.

When the check runs and what it waits for (the STP cost): the check is
skipped when no kernel op ran (nothing to roll back, and a re-apply of the
same state must stay free). Otherwise it first waits until the bridge ports
on the management path (the management adapters' ports and wires, the
controller's and the routers' ports) are out of STP listening/learning, at
most `converge_timeout`: a brand-new lab, or a change that re-plugs a
management wire, waits the ~4 s STP needs; any other change finds those
ports forwarding and waits nothing. Then the echo gets `probe_timeout`: a
reachable adapter answers in a millisecond, but right after a failback the
fabric's MAC table may still point at the old port until STP's topology
change shortens ageing (~3 s). A REQ-5 refusal thus costs ~4 s +
`probe_timeout` when the management wire was re-plugged, else `probe_timeout`;
a successful change pays only the STP wait it really needs.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from ..controller.client import ControllerClient
from ..controller.rollback import AgentRollback
from ..controller.rollout import MAX_UNAVAILABLE, AgentRollout, Rollout
from ..dataplane import naming
from ..dataplane.apply import ApplyResult, apply
from ..dataplane.base import Backend
from ..dataplane.kops import KernelOp
from ..dataplane.kstate import KernelState
from ..dataplane.render import render, render_index
from ..errors import DataplaneError, RuleViolation, VmknetError
from ..model import Datacenter, Service
from . import probe, stp
from .binding import Lab, backend_for

CONVERGE_TIMEOUT = 8.0  # STP needs 2 x forward delay (2 s) = 4 s; twice that on a loaded box
# After STP settles, a failback or re-plug leaves the switch fabric's MAC table pointing at
# the old port until the topology change (1 s hello) shortens ageing to 2 s: up to ~3 s.
PROBE_TIMEOUT = 3.0
_PATH_ROLES = frozenset({"adapter-port", "wire-host", "wire-pnet"})
_FABRIC_ROLES = frozenset({"controller-port", "router-port"})


@dataclass(frozen=True, slots=True)
class Target:
    host: str
    vmk: str
    address: str


@dataclass
class Realised:
    """What the last realise did: the apply, the STP wait and the echo round trips."""

    result: ApplyResult
    converge_seconds: float | None = None  # None: no check ran
    replies: dict[Target, float | None] = field(default_factory=dict)
    rollout: Rollout | None = None  # when the hosts' agents ran their parts (MGMT-3)


class _Recording:
    """Counts the ops a backend executed, so the post-check knows whether anything changed."""

    def __init__(self, inner: Backend) -> None:
        self.inner = inner
        self.name = inner.name
        self.executed = 0

    def read(self, prefix: str) -> KernelState:
        return self.inner.read(prefix)

    def execute(self, op: KernelOp) -> None:
        self.executed += 1
        self.inner.execute(op)


def management_targets(dc: Datacenter) -> list[Target]:
    """Every management adapter with a static IPv4 address (what the controller can address)."""
    found = []
    for host_name in sorted(dc.hosts):
        host = dc.hosts[host_name]
        for vmk_name in sorted(host.vmknics_with(Service.MANAGEMENT), key=naming.natural_key):
            ipv4 = host.vmknics[vmk_name].ipv4
            if ipv4.type == "static" and ipv4.address is not None:
                found.append(Target(host_name, vmk_name, str(ipv4.address.ip)))
    return found


def management_ports(dc: Datacenter, lab: str) -> list[tuple[str, str]]:
    """Bridge ports a management frame crosses (namespace, port name)."""
    managed = {(t.host, t.vmk) for t in management_targets(dc)}
    return sorted(key for key, end in render_index(dc, lab).items()
                  if end.role in _FABRIC_ROLES
                  or (end.role in _PATH_ROLES and (end.host, end.vmk) in managed))


class ManagementCheck:
    """The post-check of one apply: REQ-5 from the controller namespace."""

    def __init__(self, lab: Lab, dc: Datacenter, backend: _Recording, converge_timeout: float,
                 probe_timeout: float, report: Realised) -> None:
        self.lab, self.dc, self.backend, self.report = lab, dc, backend, report
        self.converge_timeout, self.probe_timeout = converge_timeout, probe_timeout

    def __call__(self) -> None:
        controller = self.dc.physical.controller
        targets = management_targets(self.dc)
        if controller is None or not targets or not self.backend.executed:
            return
        self.report.converge_seconds = stp.wait_converged(
            management_ports(self.dc, self.lab.name), self.converge_timeout)
        replies = probe.echo(naming.controller_ns(self.lab.name),
                             [t.address for t in targets], self.probe_timeout)
        self.report.replies = {t: replies.get(t.address) for t in targets}
        lost = [t for t in targets if replies.get(t.address) is None]
        if lost:
            names = ", ".join(f"{t.host} {t.vmk} {t.address}" for t in lost)
            raise RuleViolation(
                "REQ-5",
                f"The change cuts the controller ({controller.address.ip}) off from the "
                f"management adapter of {names}: rolled back: no echo reply within "
                f"{self.probe_timeout:g} s after STP settled",
                hosts=sorted({t.host for t in lost}),
                unreachable=[f"{t.host}/{t.vmk}/{t.address}" for t in lost])


class KernelRealiser:
    """Applies render(dc) to the lab's namespaces; `last` keeps what the last call did."""

    def __init__(self, backend: Backend | None = None, *, check_management: bool = True,
                 converge_timeout: float = CONVERGE_TIMEOUT,
                 probe_timeout: float = PROBE_TIMEOUT) -> None:
        self.backend = backend
        self.check_management = check_management
        # False: the pre-agent path (one apply here, REQ-5's echo): the benchmark's baseline.
        self.use_agents = True
        self.converge_timeout = converge_timeout
        self.probe_timeout = probe_timeout
        self.max_unavailable = MAX_UNAVAILABLE  # hosts changed at once: "N" or "P%" (MGMT-3)
        self.last: Realised | None = None

    def realise(self, lab: Lab, dc: Datacenter) -> Realised:
        backend = _Recording(self.backend if self.backend is not None else backend_for(lab))
        desired = render(dc, lab.name)
        report = Realised(ApplyResult(ops=[]))
        check = (ManagementCheck(lab, dc, backend, self.converge_timeout, self.probe_timeout,
                                 report) if self.check_management else None)
        agents = (_agent_rollback(lab, dc, desired)
                  if self.check_management and self.use_agents else None)
        start = time.perf_counter()
        # A backend given to the realiser (a fault injector in tests) takes every op itself.
        if agents is not None and agents.armable and self.backend is None:
            rollout = AgentRollout(backend, lab.name, lab.prefix, sorted(dc.hosts),
                                   sorted(agents.armable), agents.timeout,
                                   self.max_unavailable).realise(desired)
            if rollout is not None:
                report.result, report.rollout = rollout.result, rollout
                report.result.seconds["total"] = time.perf_counter() - start
                self.last = report
                return report
        try:
            report.result = apply(
                backend, desired, lab.prefix, verify=True,
                post_check=_both(agents.post_check, check) if agents else check,
                before_execute=agents.before_execute if agents else None)
        except DataplaneError as err:
            if agents is not None:
                agents.abandon()
            _one_line(err)
            raise
        report.result.seconds["total"] = time.perf_counter() - start
        self.last = report
        return report


def _agent_rollback(lab: Lab, dc: Datacenter, desired: KernelState) -> AgentRollback | None:
    """MGMT-2 by the hosts' agents when the lab's controller runs; else only REQ-5's echo."""
    if dc.physical.controller is None:
        return None
    client = ControllerClient(lab.name)
    try:
        connected = [h["host"] for h in client.host_status() if h["connected"]]
    except VmknetError:
        return None  # no management plane (yet): `lab up` before it starts the controller
    return AgentRollback(lab.name, sorted(dc.hosts), desired,
                         dc.physical.controller.rollbackTimeout, armable=connected)


def _both(first: Callable[[], None], second: Callable[[], None] | None) -> Callable[[], None]:
    def run() -> None:
        first()
        if second is not None:
            second()
    return run


def _one_line(err: DataplaneError) -> None:
    """Kernel messages can carry newlines (netlink extack); the CLI prints one line."""
    line = " ".join(err.message.split())
    err.message, err.args = line, (line,)
