"""Two starts of one VM on one host at the same time: one starts it, the other is refused
(seen by HA: two restart requests for one VM both passed the check, two processes ran)."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from vmknet.agent import processes
from vmknet.errors import InvalidArgument
from vmknet.supervise.records import ProcessRecord
from vmknet.supervise.start import Child


class _Proc:
    def __init__(self, ended: threading.Event) -> None:
        self.ended = ended

    def wait(self) -> int:
        self.ended.wait(5)
        return 0


def test_two_concurrent_starts_of_one_vm_start_it_once(monkeypatch: pytest.MonkeyPatch) -> None:
    entered, release, ended = threading.Event(), threading.Event(), threading.Event()
    started: list[str] = []

    def slow_start(kind: str, lab: str, host: str, name: str, *args: Any,
                   **kw: Any) -> Child:
        started.append(name)
        entered.set()
        release.wait(5)  # the first start is between its check and its child
        rec = ProcessRecord(kind, name, host, lab, 4242, 0.0, "vmknet.vm.vmx")
        return Child(rec, _Proc(ended))  # type: ignore[arg-type]

    monkeypatch.setattr(processes.launch, "start", slow_start)
    monkeypatch.setattr(processes.scan, "find", lambda *a, **k: [])
    monkeypatch.setattr(processes.listeners, "open_all", lambda *a, **k: [])
    agent: Any = type("A", (), {"error": None, "book": None, "host": "esx01"})()
    sup = processes.Supervisor(agent, "t1", "esx01")
    params = {"kind": "vm", "name": "vm1", "args": {"memory": 1 << 20}}
    first: list[Any] = []
    t = threading.Thread(target=lambda: first.append(sup.start(params)))
    t.start()
    try:
        assert entered.wait(5)
        with pytest.raises(InvalidArgument) as refused:
            sup.start(params)
        assert refused.value.code == "AlreadyExists"
    finally:
        release.set()
        t.join(5)
    assert started == ["vm1"] and first[0]["pid"] == 4242
    with pytest.raises(InvalidArgument):  # and once it runs, still refused
        sup.start(params)
    ended.set()
