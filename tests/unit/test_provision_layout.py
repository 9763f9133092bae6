"""The VM configuration's disk chain, snapshot tree, revert and clone renaming (pure)."""

from __future__ import annotations

import pytest

from vmknet.errors import InvalidArgument, NotFound
from vmknet.provision.layout import Vmx


def _vm() -> Vmx:
    return Vmx("web01", 1 << 24, 1000, 1, 1 << 26, "web01.vmdk")


def test_snapshot_freezes_the_disk_and_chains_a_delta() -> None:
    vmx = _vm().with_snapshot("s1", 1.0).with_snapshot("s2", 2.0)
    assert vmx.disk == "web01-000002.vmdk"
    assert vmx.chain() == ["web01-000002.vmdk", "web01-000001.vmdk", "web01.vmdk"]
    assert vmx.files() == ["web01-000001.vmdk", "web01-000002.vmdk", "web01.vmdk",
                           "web01.vmx"]  # the configuration last: it names the disks
    with pytest.raises(InvalidArgument):
        vmx.with_snapshot("s1", 3.0)


def test_revert_discards_only_the_current_delta() -> None:
    vmx = _vm().with_snapshot("s1", 1.0).with_snapshot("s2", 2.0)
    back, discarded = vmx.reverted("s1")
    assert discarded == "web01-000002.vmdk"
    assert back.chain() == ["web01-000003.vmdk", "web01.vmdk"]
    assert "web01-000001.vmdk" in back.disks()  # s2's frozen disk stays (a tree)
    assert discarded not in back.disks()
    with pytest.raises(NotFound):
        vmx.reverted("nope")


def test_clone_renames_every_file_and_reference() -> None:
    vmx = _vm().with_snapshot("s1", 1.0)
    clone, mapping = vmx.renamed("web02")
    assert mapping["web01.vmx"] == "web02.vmx"
    assert clone.chain() == ["web02-000001.vmdk", "web02.vmdk"]
    assert clone.snapshots[0].disk == "web02.vmdk"
    assert Vmx.from_json(clone.to_json()) == clone


def test_no_disk_no_snapshot() -> None:
    with pytest.raises(InvalidArgument):
        Vmx("x", 1, 1, 1, 0).with_snapshot("s", 0.0)
    with pytest.raises(InvalidArgument):
        Vmx.from_json("{}")
