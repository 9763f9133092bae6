"""NFS on arrays and hosts without a kernel: exports (STO-6), ganesha's config, libnfs URLs,
the adapter that reaches a server, and STO-2 refused by the operations."""

from __future__ import annotations

import json
from functools import partial
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from vmknet.cli.context import AppContext
from vmknet.cli.esxcli import esxcli
from vmknet.errors import AlreadyExists, NotFound, RuleViolation
from vmknet.inventory import Inventory
from vmknet.model import StorageArray
from vmknet.ops.host import host_add
from vmknet.ops.storage import nfs_add, nfs_remove
from vmknet.state import load_file
from vmknet.storage import ganesha, libnfs, nfs
from vmknet.storage.arrays import export_dir

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "storage-lab.yaml"


def _array(exports: list[str]) -> StorageArray:
    return StorageArray.model_validate({
        "interfaces": [{"vlan": 31, "addresses": ["198.18.31.100/24"]}],
        "nfs": {"exports": [{"path": p} for p in exports]}})


def test_exports_are_checked() -> None:
    assert _array(["/share", "/vols"]).exports == ["/share", "/vols"]
    for bad in ("share", "/a/b", "/..", "/", "/" + "x" * 65):
        with pytest.raises(ValidationError, match="STO-6"):
            _array([bad])
    with pytest.raises(ValidationError, match="declared twice"):
        _array(["/share", "/share"])


@given(st.from_regex(r"/[A-Za-z0-9_-][A-Za-z0-9._-]{0,63}", fullmatch=True))
def test_an_export_directory_stays_in_its_array_folder(path: str) -> None:
    folder = export_dir("lab", "array01", path)
    assert folder.parent.name == "exports" and folder.name == path[1:]


def test_ganesha_serves_nfs3_and_4_with_vfs_exports(tmp_path: Path) -> None:
    text = ganesha.config(tmp_path, [("/share", tmp_path / "exports" / "share")])
    assert "Protocols = 3, 4;" in text and "Mount_Path_Pseudo = true;" in text
    assert "Minor_Versions = 0, 1;" in text  # libnfs 4.0 needs minor version 0
    assert f"Path = {tmp_path / 'exports' / 'share'};" in text and "Pseudo = /share;" in text
    assert "Name = VFS;" in text and f"RecoveryRoot = {tmp_path / 'recovery'};" in text


def test_libnfs_urls() -> None:
    assert libnfs.url("198.18.31.100", "/share", "a b.vmdk", "3", "vmk4") == \
        "nfs://198.18.31.100/share/a%20b.vmdk?version=3&if=vmk4"
    assert libnfs.url("198.18.31.100", "/share", "", "4.1", None) == \
        "nfs://198.18.31.100/share?version=4"


def test_the_adapter_that_reaches_the_server() -> None:
    dc = load_file(EXAMPLE)
    assert nfs.reach(dc, "l", "esx01", "198.18.31.100").vmk == "vmk4"
    assert nfs.reach(dc, "l", "esx01", "198.18.30.100").vmk == "vmk2"  # the lowest in subnet
    far = nfs.reach(dc, "l", "esx01", "198.19.1.1")
    assert far.vmk is None and far.ns == "vmkl-l.esx01.defaultTcpipStack"


def test_nfs_operations_refuse_sto2() -> None:
    dc = load_file(EXAMPLE)
    nfs_add(dc, "esx01", "nfs01", ["198.18.31.100"], "/share")
    with pytest.raises(AlreadyExists):
        nfs_add(dc, "esx01", "nfs01", ["198.18.31.100"], "/share")
    with pytest.raises(RuleViolation, match=r"mounted with NFS 3 as nfs01 on esx01") as err:
        nfs_add(dc, "esx02", "ds41", ["198.18.31.100", "198.18.31.101"], "/share", "4.1")
    assert err.value.code == "STO-2"
    with pytest.raises(RuleViolation, match="NFS 3 uses one"):
        nfs_add(dc, "esx02", "two", ["198.18.31.100", "198.18.31.101"], "/vols")
    nfs_add(dc, "esx02", "ds41", ["198.18.31.100"], "/vols", "4.1")
    with pytest.raises(NotFound):
        nfs_remove(dc, "esx02", "ds41", "3")  # an NFS 4.1 datastore is removed with nfs41
    nfs_remove(dc, "esx02", "ds41", "4.1")
    nfs_remove(dc, "esx01", "nfs01")
    nfs_add(dc, "esx02", "ds41", ["198.18.31.100"], "/share", "4.1")  # no NFS 3 user left


def test_esxcli_nfs_without_a_lab_keeps_the_datastore_and_says_it_is_not_accessible(
        tmp_path: Path) -> None:
    store = tmp_path / "inv.db"
    Inventory.open(store).run(partial(host_add, name="esx01"))

    def esx(*words: str) -> Result:
        return CliRunner().invoke(esxcli, ["-H", "esx01", *words],
                                  obj=AppContext(store_path=store))

    assert esx("storage", "nfs", "add", "-H", "198.18.31.100", "-s", "/share",
               "-v", "nfs01").exit_code == 0
    rows = json.loads(esx("storage", "nfs", "list", "--json").output)
    assert [(r["Volume Name"], r["Accessible"], r["Vmknic"]) for r in rows] == [
        ("nfs01", False, "")]
    refused = esx("storage", "nfs41", "add", "-H", "198.18.31.100,198.18.31.101", "-s",
                  "/share", "-v", "ds41")
    assert refused.exit_code != 0 and "STO-2" in refused.output
    assert esx("storage", "nfs", "remove", "-v", "nfs01").exit_code == 0
    assert json.loads(esx("storage", "filesystem", "list", "--json").output) == []
