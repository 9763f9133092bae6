"""The agent's side of FDM (vmknet.ha.fdm): its VMs, its controller, its datastores.

FDM runs inside the agent because the agent is the parent of the host's VMs:
a restart asked by the primary is a `process.start` of kind `vm` on the
agent's own supervisor (which refuses a VM that runs anywhere in the lab),
and the isolation response stops the VMs through it too.
"""

from __future__ import annotations

import json
import threading
import weakref
from typing import Any, Protocol

from ..errors import NotFound, VmknetError
from ..ha import datastore
from ..ha.config import Datastore
from ..ha.fdm import Fdm
from ..ha.restart import Vm
from ..vm import registry as vm_registry
from . import processes

CALL_TIMEOUT = 5.0


class Agent(processes.Agent, Protocol):
    @property
    def folder(self) -> Any: ...

    def _fresh_call(self, method: str, params: dict[str, Any], within: float) -> Any: ...


class FdmHost:
    def __init__(self, agent: Agent) -> None:
        self.agent, self.host, self.lab = agent, agent.host, agent.guard.lab
        self._stores: dict[str, datastore.NfsStore] = {}

    def vms(self) -> list[Vm]:
        rows = processes.supervisor(self.agent).listing({})["processes"]
        out = []
        for row in rows:
            if row["kind"] != "vm":
                continue
            try:
                rec = vm_registry.load(self.lab, row["name"])
            except NotFound:
                continue  # booting: its record is not there yet
            if rec.pid == row["pid"]:
                disk = json.dumps(rec.disk) if rec.disk else None
                out.append(Vm(rec.name, rec.memory, rec.dirty_rate, disk))
        return out

    def start_vm(self, vm: Vm) -> None:
        # memory is lost on a restart (as in vSphere); the disk on its datastore is not
        args: dict[str, Any] = {"memory": vm.memory, "dirtyRate": vm.dirty_rate}
        if vm.disk:
            args["disk"] = vm.disk
        processes.supervisor(self.agent).start({"kind": "vm", "name": vm.name, "args": args})

    def stop_vm(self, name: str) -> None:
        processes.supervisor(self.agent).stop({"kind": "vm", "name": name})

    def controller(self, params: dict[str, Any]) -> dict[str, Any]:
        reply = self.agent._fresh_call("ha", {"lab": self.lab, **params}, CALL_TIMEOUT)
        if not isinstance(reply, dict):
            raise VmknetError("The controller's HA reply is not an object", code="ProtocolError")
        return reply

    def store(self, ds: Datastore) -> datastore.Store:
        """The datastore over NFS from this host's storage adapter, one mount each."""
        got = self._stores.get(ds.name)
        if got is None or got.ds != ds:
            if got is not None:
                got.close()
            got = self._stores[ds.name] = datastore.NfsStore(self.lab, self.host, ds)
        return got


_FDMS: weakref.WeakKeyDictionary[Any, Fdm] = weakref.WeakKeyDictionary()
_GUARD = threading.Lock()


def start(agent: Agent) -> None:
    """Start the agent's FDM (it idles until the controller says the host is in an HA
    cluster; a host outside a lab has no VMs to protect)."""
    if not agent.guard.lab:
        return
    with _GUARD:
        if agent in _FDMS:
            return
        fdm = _FDMS[agent] = Fdm(FdmHost(agent), agent.folder)
    fdm.start()


def stop(agent: Agent) -> None:
    with _GUARD:
        fdm = _FDMS.pop(agent, None)
    if fdm is not None:
        fdm.stop()
