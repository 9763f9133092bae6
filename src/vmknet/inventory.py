"""The facade every interface calls: CLI, REST API, lab and engines.

    inv = Inventory.open()                      # the default store, or Inventory.open(path)
    inv.run(partial(interface.add, host="esx01", name="vmk2", portgroup="vMotion-A",
                    netstack="vmotion"))        # one esxcli-style operation, all or nothing
    inv.validate(desired); inv.plan(desired); inv.apply(desired)   # desired-state files
    inv.show(); inv.lint(); inv.resolve(Service.VMOTION, "esx01", "esx02")

Reads go to the store each time, so two processes sharing a store see each
other's changes; writes are serialised by the store's transactions.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .errors import VmknetError
from .events import Event
from .model import Datacenter, Service
from .ops import Operation, execute
from .resolve import Flow, resolve
from .rules.checks import check
from .rules.lint import Finding, lint
from .state import dumps
from .state.diff import Change, diff
from .store import Store, default_store_path


@dataclass(frozen=True, slots=True)
class Plan:
    """The ordered changes from the store's `version` to a desired state."""

    version: int
    changes: list[Change]
    desired: Datacenter


class Inventory:
    def __init__(self, store: Store) -> None:
        self.store = store

    @classmethod
    def open(cls, path: str | Path | None = None) -> Inventory:
        return cls(Store(path if path is not None else default_store_path()))

    def read(self) -> Datacenter:
        return self.store.read()[1]

    def run(self, operation: Operation) -> list[Event]:
        """Execute one operation; on any error the store is untouched."""
        with self.store.transaction() as txn:
            new, events = execute(txn.datacenter, operation)
            txn.save(new, events)
        return events

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

    def apply(self, desired: Datacenter | Plan) -> Plan:
        """Make the store hold `desired`, or nothing at all.

        Given a `Plan`, refuse with ConcurrentModification if the store moved
        since the plan was made (someone else applied in between).
        """
        plan = desired if isinstance(desired, Plan) else self.plan(desired)
        if plan.changes:
            self.store.save_if(plan.version, plan.desired, [])
        return plan

    def show(self) -> str:
        return dumps(self.read())

    def lint(self, dc: Datacenter | None = None) -> list[Finding]:
        return lint(dc if dc is not None else self.read())

    def resolve(self, service: Service, source: str, target: str) -> list[Flow]:
        return resolve(self.read(), service, source, target)

    def events(self, limit: int = 50) -> list[Event]:
        return [Event(e.rule, e.path, e.message) for e in self.store.events(limit)]
