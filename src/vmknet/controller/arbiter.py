"""FT-2 on the controller: per protected VM a generation and who went live, decided once.

VMware FT settles a broken FT link with a test-and-set on shared storage; vCenter's
role here is the same decision held by the lab's controller, outside both VM
processes. Each `ft on` (and each automatic re-protection) *begins* a generation of
the VM's pair: a new session, nobody has won yet. When primary and secondary lose
each other, each *claims* the session: the first claim wins, every later one hears
the winner. A claim for a session that is not the VM's current one (a process of an
older pair, frozen and woken after a re-protection) never wins: two generations
cannot both go on.

The decisions are kept in the controller's folder (`ft-arbiter.json`) before the
reply leaves, so a controller restarted between the two claims answers the second
one as it answered the first. Every decision is also an event in the inventory's log
(`vmknet events`): FtSecondaryStarted, FtReprotected, FtFailover, FtPrimaryRunsOn.

The one entry of the local door (`ft.arbiter`, `handlers`) takes `op`: begin, claim,
winner, end. The CLI's `ft on` and the VM processes both reach it there: in a lab,
every VM process runs as root on the controller's machine (the local door's socket
is a file, so it answers whatever network namespace the caller is in).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol

from ..errors import InvalidArgument
from ..events import Event
from ..mgmt import wire
from ..supervise.records import read_json, write_json

PRIMARY, SECONDARY = "primary", "secondary"
ROLES = (PRIMARY, SECONDARY)
KEEP_DECIDED = 256  # decided sessions remembered (ft status of an older pair)
FILE = "ft-arbiter.json"


@dataclass
class Pair:
    """The VM's current FT pair: its session, generation, hosts and the decision."""

    vm: str
    session: str
    generation: int
    primary: str
    secondary: str
    winner: str | None = None
    decided: float | None = None  # time.time() of the decision


class Arbiter:
    """The decisions of one controller (pure apart from `save` and `record`)."""

    def __init__(self, save: Callable[[dict[str, Any]], None] = lambda data: None,
                 record: Callable[[list[Event]], None] = lambda events: None,
                 data: dict[str, Any] | None = None) -> None:
        self._save, self._record = save, record
        self._lock = threading.Lock()
        data = data or {}
        self.pairs = {vm: Pair(**p) for vm, p in dict(data.get("pairs", {})).items()}
        self.decided: dict[str, str] = dict(data.get("decided", {}))

    def handle(self, params: dict[str, Any]) -> dict[str, Any]:
        op = params.get("op")
        vm, session = _text(params, "vm"), _text(params, "session")
        if op == "begin":
            return self.begin(vm, session, _text(params, "primary"),
                              _text(params, "secondary"), bool(params.get("reprotect")))
        if op == "claim":
            role = params.get("role")
            if role not in ROLES:
                raise InvalidArgument(f"An FT claim is made by {' or '.join(ROLES)}")
            return self.claim(vm, session, str(role))
        if op == "winner":
            return {"winner": self.winner(session)}
        if op == "end":
            self.end(vm, session)
            return {}
        raise InvalidArgument("ft.arbiter: op is one of begin, claim, winner, end")

    def begin(self, vm: str, session: str, primary: str, secondary: str,
              reprotect: bool = False) -> dict[str, Any]:
        """A new pair for `vm`: the next generation; any older session can no longer win."""
        with self._lock:
            old = self.pairs.get(vm)
            if old is not None and old.session == session:  # a repeat, or a claim came
                # first (it made the pair): the decision stands, the hosts are filled in
                old.primary, old.secondary = primary, secondary
                self._persist()
                return {"generation": old.generation}
            pair = Pair(vm, session, (old.generation if old else 0) + 1, primary, secondary,
                        self.decided.get(session))  # a decided session stays decided
            self.pairs[vm] = pair
            self._persist()
        kind = "FtReprotected" if reprotect else "FtSecondaryStarted"
        why = (" after a failover (re-protection)" if reprotect else "")
        self._record([Event("FT-1", f"vms/{vm}",
                            f"{kind}: the secondary of {vm} runs on {secondary}, the primary "
                            f"on {primary}{why} (generation {pair.generation})")])
        return {"generation": pair.generation}

    def claim(self, vm: str, session: str, role: str) -> dict[str, Any]:
        """Test-and-set: the first claim of the VM's current session wins."""
        with self._lock:
            pair = self.pairs.get(vm)
            if pair is None:  # no begin was heard (an older controller): this one is it
                pair = self.pairs[vm] = Pair(vm, session, 1, "", "")
            if pair.session != session:
                return {"won": False, "winner": self.decided.get(session),
                        "generation": pair.generation, "stale": True}
            if pair.winner is not None:
                return {"won": pair.winner == role, "winner": pair.winner,
                        "generation": pair.generation}
            pair.winner, pair.decided = role, time.time()
            self.decided[session] = role
            while len(self.decided) > KEEP_DECIDED:
                del self.decided[next(iter(self.decided))]
            self._persist()  # before the reply: a restarted controller answers the same
            snapshot = Pair(**asdict(pair))
        self._record([_decision_event(snapshot)])
        return {"won": True, "winner": role, "generation": snapshot.generation}

    def winner(self, session: str) -> str | None:
        with self._lock:
            return self.decided.get(session)

    def end(self, vm: str, session: str) -> None:
        """`ft off`: the pair is gone; its session can no longer win."""
        with self._lock:
            pair = self.pairs.get(vm)
            if pair is not None and pair.session == session:
                del self.pairs[vm]
                self._persist()

    def _persist(self) -> None:
        self._save({"pairs": {vm: asdict(p) for vm, p in self.pairs.items()},
                    "decided": self.decided})


def _decision_event(pair: Pair) -> Event:
    if pair.winner == SECONDARY:
        return Event("FT-2", f"vms/{pair.vm}",
                     f"FtFailover: the FT link of {pair.vm} broke; the secondary on "
                     f"{pair.secondary or '?'} goes live from its last acknowledged "
                     f"checkpoint, the primary on {pair.primary or '?'} stops "
                     f"(generation {pair.generation})")
    return Event("FT-2", f"vms/{pair.vm}",
                 f"FtPrimaryRunsOn: the FT link of {pair.vm} broke; the primary on "
                 f"{pair.primary or '?'} runs on unprotected, the secondary on "
                 f"{pair.secondary or '?'} stands down (generation {pair.generation})")


def _text(params: dict[str, Any], key: str) -> str:
    value = params.get(key, "")
    if not isinstance(value, str) or len(value) > 128:
        raise InvalidArgument(f"ft.arbiter: {key} must be a string of at most 128 characters")
    return value


# -- the local door's entry ------------------------------------------------------------------


class Controller(Protocol):
    """What the arbiter needs of `service.Controller` (which imports this module)."""

    folder: Path
    record: Callable[[list[Event]], None]


_arbiters: dict[Path, Arbiter] = {}
_made = threading.Lock()


def arbiter_of(ctl: Controller) -> Arbiter:
    """The controller's one arbiter (the door's handler tables are built per connection)."""
    with _made:
        found = _arbiters.get(ctl.folder)
        if found is None:
            path = ctl.folder / FILE

            def record(events: list[Event]) -> None:
                # Off the caller's thread: a claim's reply must not wait for the store.
                threading.Thread(target=ctl.record, args=(events,), daemon=True).start()

            def save(data: dict[str, Any]) -> None:
                write_json(path, data, mode=0o600)

            found = _arbiters[ctl.folder] = Arbiter(save, record, read_json(path))
        return found


def handlers(ctl: Controller) -> dict[str, wire.Handler]:
    return {"ft.arbiter": lambda p: arbiter_of(ctl).handle(p)}
