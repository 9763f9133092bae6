"""The shipped example lab through render -> plan -> apply on the Linux backend, and back."""

from __future__ import annotations

import time
from pathlib import Path

from vmknet.dataplane.apply import apply, destroy
from vmknet.dataplane.kstate import KernelState
from vmknet.dataplane.linux import LinuxBackend
from vmknet.dataplane.plan import plan
from vmknet.dataplane.render import render
from vmknet.state import load_file

LAB = Path(__file__).resolve().parents[2] / "examples" / "lab.yaml"


def test_example_lab_applies_reads_back_equal_and_is_destroyed(backend: LinuxBackend,
                                                               prefix: str) -> None:
    lab = prefix.removeprefix("vmkl-").removesuffix(".")  # same prefix as the fixture's
    want = render(load_file(LAB), lab)
    result = apply(backend, want, prefix)
    start = time.monotonic()
    current = backend.read(prefix)
    took = time.monotonic() - start
    print(f"\nexample lab: {len(want.namespaces)} namespaces, {len(want.links)} links, "
          f"{len(result.ops)} ops in {result.seconds['execute']:.2f} s; read {took * 1000:.0f} ms")
    assert plan(current, want) == []
    destroy(backend, prefix)
    assert backend.read(prefix) == KernelState()
