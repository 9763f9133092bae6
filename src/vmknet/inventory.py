"""The facade every interface calls: CLI, REST API, lab and engines.

    inv = Inventory.open()                      # the default store, or Inventory.open(path)
    inv.run(partial(interface.add, host="esx01", name="vmk2", portgroup="vMotion-A",
                    netstack="vmotion"))        # one esxcli-style operation, all or nothing
    inv.validate(desired); inv.plan(desired); inv.apply(desired)   # desired-state files
    inv.show(); inv.lint(); inv.resolve(Service.VMOTION, "esx01", "esx02")

Reads go to the store each time, so two processes sharing a store see each
other's changes; writes are serialised by the store's transactions.

A store bound to a lab (`vmknet lab up`) is realised: `run` and `apply`
compute the new datacenter, apply it to the lab's namespaces (verify on,
REQ-5 post-check) while the store transaction is still open, and commit only
if the kernel took it. A kernel failure has already rolled the kernel back,
and its exception aborts the store transaction: neither changes. A REQ-5
refusal is also logged as an event, in a transaction of its own.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from .controller.rollout import parse_max_unavailable
from .controller.writes import InventoryWrites
from .errors import ConcurrentModification, RuleViolation, VmknetError
from .events import Event
from .lab import LAB_KEY, Lab
from .mgmt import paths
from .model import Datacenter, Service
from .ops import Operation, execute
from .resolve import Flow, resolve
from .rules.checks import check
from .rules.lint import Finding, lint
from .state import dumps
from .state.diff import Change as StateChange
from .state.diff import diff
from .store import StoreBackend, Transaction, open_store

Change = Callable[[Transaction], tuple[Datacenter, Sequence[Event]]]


@dataclass(frozen=True, slots=True)
class Plan:
    """The ordered changes from the store's `version` to a desired state."""

    version: int
    changes: list[StateChange]
    desired: Datacenter


class Realiser(Protocol):
    """Puts a datacenter into a lab's kernel namespaces, or raises having changed nothing."""

    def realise(self, lab: Lab, dc: Datacenter) -> object: ...


@dataclass(frozen=True, slots=True)
class RolloutReport:
    """How the last apply went out through the hosts' agents (MGMT-3): hosts per batch."""

    batches: list[list[str]]
    host_seconds: dict[str, float]


class Inventory:
    def __init__(self, store: StoreBackend, realiser: Realiser | None = None, *,
                 via_controller: bool = False) -> None:
        self.store = store
        # Made on first use: an unbound store never touches the kernel (nor needs root).
        self._realiser = realiser
        # True for a client (the CLI): a lab whose controller runs is changed by the
        # controller, never by this process. The controller's own facade is False.
        self.via_controller = via_controller
        self.rollout: RolloutReport | None = None  # of the last apply, when agents ran it

    @classmethod
    def open(cls, path: str | Path | None = None, realiser: Realiser | None = None, *,
             via_controller: bool = False) -> Inventory:
        # A path is a SQLite file, `etcd://host:port[/prefix]` an etcd store (docs/store.md).
        return cls(open_store(path), realiser, via_controller=via_controller)

    def controller(self) -> InventoryWrites | None:
        """The controller that changes this store's lab, when this is a client and it runs.

        Its `api.sock` is the sign: the controller makes it when it starts and removes it
        when it stops; one left by a killed controller makes the call fail with
        ControllerNotRunning (`lab status --repair` restarts it) rather than change the
        lab behind the controller's back.
        """
        if not self.via_controller:
            return None
        name = self.store.meta(LAB_KEY)
        if not isinstance(name, str) or not paths.api_socket(name).exists():
            return None
        return InventoryWrites(name)

    @property
    def realiser(self) -> Realiser:
        if self._realiser is None:
            # Imported here: an unbound inventory (validate, plan, esxcli on a store) never
            # loads the kernel side (netlink, raw sockets).
            from .lab.realise import KernelRealiser

            self._realiser = KernelRealiser()
        return self._realiser

    def read(self) -> Datacenter:
        return self.store.read()[1]

    def run(self, operation: Operation) -> list[Event]:
        """Execute one operation; on any error the store (and the lab's kernel) is untouched."""
        door = self.controller()
        if door is not None:
            return door.run(operation)
        out: list[Event] = []

        def change(txn: Transaction) -> tuple[Datacenter, list[Event]]:
            new, events = execute(txn.datacenter, operation)
            out.extend(events)
            return new, events

        self._commit(change)
        return out

    @staticmethod
    def validate(desired: Datacenter) -> list[VmknetError]:
        """Every refusal rule the desired state breaks (empty: it may be applied)."""
        return check(desired)

    def plan(self, desired: Datacenter) -> Plan:
        version, current = self.store.read()
        errors = check(desired)
        if errors:
            raise errors[0]
        return Plan(version, diff(current, desired), desired)

    def apply(self, desired: Datacenter | Plan, max_unavailable: str | None = None) -> Plan:
        """Make the store hold `desired`, or nothing at all.

        Given a `Plan`, refuse with ConcurrentModification if the store moved
        since the plan was made (someone else applied in between).
        `max_unavailable` ("N" or "P%"): hosts changed at once by their agents (MGMT-3).
        """
        plan = desired if isinstance(desired, Plan) else self.plan(desired)
        self.rollout = None
        door = self.controller()
        if door is not None:
            done = door.apply(dumps(plan.desired), plan.version, max_unavailable)
            if done.batches:
                self.rollout = RolloutReport(done.batches, done.host_seconds)
            return plan
        if max_unavailable is not None:
            spec = parse_max_unavailable(max_unavailable)
            if self.store.meta(LAB_KEY) is not None and hasattr(self.realiser, "max_unavailable"):
                self.realiser.max_unavailable = spec

        def change(txn: Transaction) -> tuple[Datacenter, list[Event]]:
            if txn.version != plan.version:
                raise ConcurrentModification(
                    f"The inventory changed since the plan was made (version {plan.version}"
                    f", now {txn.version}): run plan again",
                    expected=plan.version, actual=txn.version)
            return plan.desired, []

        # Even without store changes a bound lab is re-applied: that repairs kernel drift.
        if plan.changes or self.store.meta(LAB_KEY) is not None:
            self._commit(change)
            done_by_agents = getattr(getattr(self._realiser, "last", None), "rollout", None)
            if done_by_agents is not None:
                self.rollout = RolloutReport(done_by_agents.batches, done_by_agents.host_seconds)
        return plan

    def realise(self) -> None:
        """Apply the stored datacenter to the bound lab again (`lab status --repair`)."""
        self._commit(lambda txn: (txn.datacenter, []))

    def bind(self, lab: Lab, desired: Datacenter) -> None:
        """Bind the store to `lab` and make store and kernel hold `desired`, or neither."""
        errors = check(desired)
        if errors:
            raise errors[0]

        def change(txn: Transaction) -> tuple[Datacenter, list[Event]]:
            txn.set_meta(LAB_KEY, lab.name)
            return desired, []

        self._commit(change)

    def unbind(self) -> None:
        """Forget the lab; the datacenter stays in the store (`lab down`)."""
        with self.store.transaction() as txn:
            txn.set_meta(LAB_KEY, None)

    def _commit(self, change: Change) -> None:
        """The one write path: change, realise in the bound lab, then commit the store."""
        try:
            with self.store.transaction() as txn:
                new, events = change(txn)
                name = txn.meta(LAB_KEY)
                if name is not None:
                    self.realiser.realise(Lab.named(name), new)
                txn.save(new, events)
        except RuleViolation as err:
            if err.code == "REQ-5" and err.details.get("rolled_back"):
                self._record_rollback(err)
            raise

    def _record_rollback(self, err: RuleViolation) -> None:
        # The refused change left nothing, but ESXi logs its network rollback: so do we.
        hosts = err.details.get("hosts") or [""]
        agents: list[Event] = err.details.pop("rollbacks", [])  # MGMT-2, by the hosts' agents
        with self.store.transaction() as txn:
            txn.record([*agents, *(Event("REQ-5", f"hosts/{h}" if h else "", err.message)
                                   for h in hosts)])

    def show(self) -> str:
        return dumps(self.read())

    def lint(self, dc: Datacenter | None = None) -> list[Finding]:
        return lint(dc if dc is not None else self.read())

    def resolve(self, service: Service, source: str, target: str) -> list[Flow]:
        return resolve(self.read(), service, source, target)

    def events(self, limit: int = 50) -> list[Event]:
        return [Event(e.rule, e.path, e.message) for e in self.store.events(limit)]
