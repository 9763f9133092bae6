"""`vmknet lab up | status | down | list`: a lab's whole life, without the CLI's printing.

    report = up(inv, path, "lab")      # bind the store, build, wait for STP and REQ-5
    state = status(inv)                # realised vs desired, drift per namespace
    down(inv, name="lab")              # every namespace of the lab, even after a crash
    labs(inv)                          # labs in the kernel and the store binding each

`down` works from the namespace prefix alone (`LinuxBackend.cleanup`), so a
lab whose `up` was killed half way, or whose store was deleted, still goes.
"""

from __future__ import annotations

import contextlib
import re
import time
from dataclasses import dataclass, field
from pathlib import Path

from ..controller import lab as mgmt
from ..controller.lab import MgmtReport
from ..dataplane import naming
from ..dataplane.kops import KernelOp
from ..dataplane.kstate import KernelState
from ..dataplane.linux import LinuxBackend, netns
from ..dataplane.plan import describe, plan
from ..dataplane.render import render
from ..errors import AlreadyExists, NotFound, VmknetError
from ..inventory import Inventory
from ..model import Datacenter
from ..state import load_file
from ..storage import arrays as storage_arrays
from ..store.paths import is_etcd
from . import probe, registry, stp
from .binding import DEFAULT_NAME, Lab, backend_for, bound_lab, require_lab
from .realise import (
    CONVERGE_TIMEOUT,
    KernelRealiser,
    Realised,
    Target,
    management_ports,
    management_targets,
)

ALL_LABS = "vmkl-"
STATUS_PROBE_TIMEOUT = 1.0
_NAME = re.compile(r"[A-Za-z0-9_-]{1,32}")


def default_lab_file() -> Path:
    """examples/lab.yaml of the source tree vmknet runs from (an editable install, the repo)."""
    for parent in Path(__file__).resolve().parents:
        candidate = parent / "examples" / "lab.yaml"
        if candidate.is_file():
            return candidate
    raise NotFound("examples/lab.yaml is not next to this vmknet installation: "
                   "give the lab file, 'vmknet lab up FILE'")


# --------------------------------------------------------------------- up


@dataclass
class UpReport:
    lab: Lab
    dc: Datacenter
    state: KernelState  # what was realised
    seconds: float
    realised: Realised | None  # None when a custom realiser did the work
    reapplied: bool  # the lab was this store's already
    management: MgmtReport | None = None  # controller and agents (None: no controller)
    arrays: list[storage_arrays.StartedArray] = field(default_factory=list)  # iSCSI targets
    notes: list[str] = field(default_factory=list)  # one line each: what is modelled only


def up(inv: Inventory, file: Path, name: str = DEFAULT_NAME, *, controllers: int | None = None,
       lease_ttl: int | None = None) -> UpReport:
    lab = Lab.named(name)
    desired = load_file(file)
    bound = bound_lab(inv)
    if bound is not None and bound.name != lab.name:
        raise AlreadyExists(f"This inventory is bound to lab {bound.name!r}: run "
                            f"'vmknet lab down' first, or use another --store", lab=bound.name)
    existing = netns.listed(lab.prefix)
    if existing and bound is None:
        owner = registry.store_of(lab.name)
        raise AlreadyExists(
            f"Lab {lab.name!r} exists ({len(existing)} namespaces"
            f"{f', store {owner}' if owner else ''}): run 'vmknet lab down --name {lab.name}'"
            " first, or choose another --name", lab=lab.name, namespaces=len(existing))
    mgmt.check(str(store_of(inv)), controllers, lease_ttl)  # before building what it refuses
    registry.record(lab.name, store_of(inv))  # before the kernel: a killed `up` is found
    start = time.perf_counter()
    try:
        inv.bind(lab, desired)
    except BaseException:
        if bound is None:
            registry.forget(lab.name)  # the apply rolled the kernel back: nothing is up
        raise
    started = _start_arrays(lab.name, desired)
    management = None
    if desired.physical.controller is not None:
        # The management plane: a controller and one agent per host (MGMT-1); on failure the
        # namespaces stay (as the bind did them) and `lab status --repair` starts what is missing.
        management = mgmt.start(lab.name, desired, str(store_of(inv)), controllers=controllers,
                                lease_ttl=lease_ttl)
    seconds = time.perf_counter() - start
    realiser = inv.realiser
    last = realiser.last if isinstance(realiser, KernelRealiser) else None
    return UpReport(lab, desired, render(desired, lab.name), seconds, last, bound is not None,
                    management, started, [n for n in [fcoe_note(desired)] if n is not None])


def _start_arrays(lab: str, desired: Datacenter) -> list[storage_arrays.StartedArray]:
    """A real iSCSI target per storage array (STO-6), once its namespace exists.

    On failure the namespaces stay, as the bind made them; `lab down` removes them.
    """
    return storage_arrays.start(lab, desired)


def fcoe_note(dc: Datacenter) -> str | None:
    """One line when hosts declare software FCoE adapters: modelled and linted, not realised."""
    adapters = [f"{name} {a.vmknic}/{a.vmnic}" for name, host in sorted(dc.hosts.items())
                for a in host.storage.fcoe]
    if not adapters:
        return None
    return (f"FCoE: {', '.join(adapters)} modelled and linted (STO-3), not realised: this "
            "kernel cannot run a software FCoE adapter (no FCoE and no modules to load)")


def _stop_arrays(lab: str) -> None:
    """The lab's targets (tgtd ignores SIGTERM: killed), their sockets and backing files."""
    storage_arrays.stop(lab)


# ------------------------------------------------------------------ status


@dataclass
class Status:
    lab: Lab
    desired: KernelState
    current: KernelState
    drift: dict[str, list[str]]  # namespace -> what the kernel lacks, one plan line each
    replies: dict[Target, float | None] = field(default_factory=dict)
    stopped: list[str] = field(default_factory=list)  # "controller", "agent of esx02", ...
    arrays_stopped: list[str] = field(default_factory=list)  # "nfs-ganesha of array01", ...

    @property
    def in_sync(self) -> bool:
        return not self.drift and not self.stopped


def repair(inv: Inventory, state: Status) -> None:
    """Re-apply the inventory if the kernel drifted; start what of the management plane is
    not running (an agent restarted finds its credential and rejoins nothing), and the
    arrays' servers that died (their LUN files and exports kept)."""
    if state.drift:
        inv.realise()
    if set(state.stopped) - set(state.arrays_stopped):
        mgmt.start(state.lab.name, inv.read(), str(store_of(inv)))
    if state.arrays_stopped:
        _start_arrays(state.lab.name, inv.read())


def status(inv: Inventory) -> Status:
    lab = require_lab(inv)
    dc = inv.read()
    desired = render(dc, lab.name)
    current = backend_for(lab).read(lab.prefix)
    drift: dict[str, list[str]] = {}
    for op in plan(current, desired):
        drift.setdefault(op_namespace(op), []).append(describe(op))
    result = Status(lab, desired, current, dict(sorted(drift.items())))
    if dc.physical.controller is not None:
        result.stopped = mgmt.stopped(lab.name, dc)
    result.arrays_stopped = storage_arrays.stopped(lab.name, dc)
    result.stopped += result.arrays_stopped  # printed and repaired like the management plane
    controller = naming.controller_ns(lab.name)
    targets = management_targets(dc)
    if dc.physical.controller is not None and controller in current.namespaces and targets:
        # Right after a change (or its REQ-5 rollback) a re-plugged management port may
        # still be learning: report reachability as it will be, not for those 4 s.
        stp.wait_converged(management_ports(dc, lab.name), CONVERGE_TIMEOUT)
        replies = probe.echo(controller, [t.address for t in targets], STATUS_PROBE_TIMEOUT)
        result.replies = {t: replies.get(t.address) for t in targets}
    return result


def op_namespace(op: KernelOp) -> str:
    """The namespace an op works in (a veth pair: its first end's)."""
    for attr in ("ns", "link", "before", "address", "route", "rule"):
        value = getattr(op, attr, None)
        if isinstance(value, str):
            return value
        if value is not None:
            return str(value.ns)
    return "?"


# -------------------------------------------------------------- down, list


@dataclass
class Downed:
    name: str
    removed: list[str]  # namespaces
    unbound: list[Path | str]  # stores that were bound to it


def down(inv: Inventory, name: str | None = None, *, every: bool = False) -> list[Downed]:
    """Remove the named lab (default: this store's, else 'lab'), or every lab with `every`."""
    if every:
        names = sorted(set(_kernel_labs()) | set(registry.names()))
    else:
        bound = bound_lab(inv)
        names = [name or (bound.name if bound else DEFAULT_NAME)]
    return [_down_one(inv, Lab.named(n)) for n in names]


def _down_one(inv: Inventory, lab: Lab) -> Downed:
    # The lab's processes (VMs, NFC servers) hold sockets in its namespaces: stop them first.
    # The agents go first: each stops its children (the processes it started or adopted) as
    # it ends; then the /proc sweep ends whatever is left (an agent or the controller was
    # killed with -9, or a process was started on the direct path).
    from ..nfc.registry import stop_servers
    from ..replication.procs import stop_all as stop_replication
    from ..vm.reaper import kill_lab_vms

    mgmt.stop(lab.name)
    stop_replication(lab.name)
    stop_servers(lab.name)
    kill_lab_vms(lab.name)
    _stop_arrays(lab.name)
    removed = LinuxBackend().cleanup(lab.prefix)  # the prefix alone: no store needed
    unbound: list[Path | str] = []
    here = store_of(inv)
    stores = [here]
    owner = registry.store_of(lab.name)
    if owner is not None and str(owner) != str(here) and not (
            isinstance(owner, Path) and isinstance(here, Path)
            and owner.resolve() == here.resolve()):
        stores.append(owner)
    for where in stores:
        # A store that was deleted or broken binds nothing; it must not stop the cleanup.
        with contextlib.suppress(VmknetError):
            other = inv if where is here else Inventory.open(where)
            if (isinstance(where, str) or where.exists()) and other.store.meta("lab") == lab.name:
                other.unbind()
                unbound.append(where)
    registry.forget(lab.name)
    return Downed(lab.name, removed, unbound)


@dataclass
class LabInfo:
    name: str
    namespaces: int
    store: Path | str | None  # the store that brought it up (str: etcd), if known
    this_store: bool


def labs(inv: Inventory) -> list[LabInfo]:
    counts = _kernel_labs()
    bound = bound_lab(inv)
    out = []
    for name in sorted(set(counts) | set(registry.names())):
        if not _NAME.fullmatch(name):
            continue
        out.append(LabInfo(name, counts.get(name, 0), registry.store_of(name),
                           bound is not None and bound.name == name))
    if bound is not None and bound.name not in counts and not any(i.this_store for i in out):
        out.append(LabInfo(bound.name, 0, store_of(inv), True))  # bound, but gone (a reboot)
    return out


def store_of(inv: Inventory) -> Path | str:
    """The store's file, or an etcd store's address (it has no file)."""
    where = inv.store.location
    return where if is_etcd(where) else inv.store.path


def _kernel_labs() -> dict[str, int]:
    """Lab name -> namespace count, for every `vmkl-<name>.*` namespace in the kernel."""
    counts: dict[str, int] = {}
    for ns in netns.listed(ALL_LABS):
        name = ns[len(ALL_LABS):].split(".", 1)[0]
        if _NAME.fullmatch(name) and "." in ns[len(ALL_LABS):]:
            counts[name] = counts.get(name, 0) + 1
    return counts
