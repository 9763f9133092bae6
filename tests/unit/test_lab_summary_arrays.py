"""`lab up` lists the storage arrays: namespace, interfaces and what each serves."""

from __future__ import annotations

from pathlib import Path

from vmknet.dataplane import naming
from vmknet.lab import summary
from vmknet.model import StorageArray
from vmknet.model.arrays import NfsService
from vmknet.state import load_file

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def test_an_iscsi_array_row() -> None:
    dc = load_file(EXAMPLES / "iscsi-lab.yaml")
    assert summary.array_rows(dc, "t1") == [[
        "array01", naming.array_ns("t1", "array01"), "VLAN 30: 198.18.30.100/24",
        "iSCSI iqn.2026-11.com.example:array01.ds01 (2 LUNs)"]]


def test_nfs_exports_are_listed_and_a_lab_without_arrays_has_no_rows() -> None:
    dc = load_file(EXAMPLES / "iscsi-lab.yaml")
    array = dc.physical.storage_arrays["array01"]
    nfs_only = StorageArray(interfaces=array.interfaces,
                            nfs=NfsService.model_validate({"exports": [{"path": "/share"}]}))
    dc.physical.storage_arrays = {"array02": nfs_only}
    assert summary.array_rows(dc, "t1")[0][3] == "NFS /share"
    dc.physical.storage_arrays = {}
    assert summary.array_rows(dc, "t1") == []
