"""Which lab a store is bound to: the `lab` key of the store's meta table."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from ..dataplane import naming
from ..dataplane.base import Backend
from ..errors import InvalidArgument, NotFound

LAB_KEY = "lab"
DEFAULT_NAME = "lab"  # `vmknet lab up` without --name


class _Meta(Protocol):
    def meta(self, key: str) -> str | None: ...


class Bound(Protocol):
    """What the binding reads of an inventory: its store's meta table.

    Not `Inventory` itself: the inventory imports this module (LAB_KEY, Lab), and the
    import contract (pyproject.toml, docs/architecture.md) keeps the lab below it.
    """

    @property
    def store(self) -> _Meta: ...


@dataclass(frozen=True)
class Lab:
    """A lab's name and the prefix of every namespace it owns (``vmkl-<name>.``)."""

    name: str
    prefix: str

    @classmethod
    def named(cls, name: str) -> Lab:
        try:
            return cls(name, naming.prefix(name))
        except ValueError as err:
            raise InvalidArgument(str(err), name=name) from None


def bound_lab(inv: Bound) -> Lab | None:
    name = inv.store.meta(LAB_KEY)
    return Lab.named(name) if name is not None else None


def require_lab(inv: Bound) -> Lab:
    lab = bound_lab(inv)
    if lab is None:
        raise NotFound("No lab is up for this inventory: run 'vmknet lab up'")
    return lab


def backend_for(lab: Lab) -> Backend:
    """The kernel the lab lives in; one backend for every lab today (names keep labs apart)."""
    del lab
    # Imported here: netlink (pyroute2) is loaded only by commands that touch the kernel.
    from ..dataplane.linux import LinuxBackend

    return LinuxBackend()
