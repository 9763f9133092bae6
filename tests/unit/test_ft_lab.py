"""The FT lab files (bench/ft_lab.py, tests/kernel/ftkit.py) and examples/lab.yaml: FT pairs.

The kernel tests and the benchmark rely on these facts: the files validate, the
adapter pair resolve() picks for FT logging is vmk2 -> vmk2 (examples: vmk5), a host
without an FT logging adapter is refused as PATH-3, one on an unrouted VLAN is NoPath.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "kernel"))

from ftkit import FT_LAB

from vmknet.errors import NoPath, RuleViolation
from vmknet.inventory import Inventory
from vmknet.model import Service
from vmknet.resolve import resolve
from vmknet.state import load_file, loads

ROOT = Path(__file__).resolve().parents[2]


def test_ft_lab_validates_and_its_ft_pair_is_vmk2() -> None:
    dc = loads(FT_LAB)
    assert Inventory.validate(dc) == []
    flows = resolve(dc, Service.FT_LOGGING, "esx01", "esx02")
    assert [(f.source.vmknic, str(f.source.address.ip), f.target.vmknic,
             str(f.target.address.ip)) for f in flows] == [
        ("vmk2", "198.18.16.11", "vmk2", "198.18.16.12")]
    with pytest.raises(RuleViolation) as err:
        resolve(dc, Service.FT_LOGGING, "esx01", "esx03")
    assert err.value.code == "PATH-3"
    with pytest.raises(NoPath):
        resolve(dc, Service.FT_LOGGING, "esx01", "esx04")


def test_example_lab_has_an_ft_pair_between_esx01_and_esx02() -> None:
    dc = load_file(ROOT / "examples" / "lab.yaml")
    flows = resolve(dc, Service.FT_LOGGING, "esx01", "esx02")
    assert [(f.source.vmknic, f.target.vmknic) for f in flows] == [("vmk5", "vmk5")]
    assert str(flows[0].target.address.ip) == "198.18.16.12"
