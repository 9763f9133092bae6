"""libiscsi output parsing and ESXi's path and device naming (pure)."""

from __future__ import annotations

import os
import re
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from vmknet.storage import libiscsi, tgt
from vmknet.storage.paths import (
    Scan,
    ScannedLun,
    ScannedTarget,
    device_id,
    devices,
    initiator_name,
    paths,
)

LS = """Target:iqn.2026-11.com.example:array01.ds01 Portal:198.18.30.100:3260,1
Lun:0    Type:STORAGE_ARRAY_CONTROLLER
Lun:1    Type:DIRECT_ACCESS (Size:255M)
Lun:2    Type:DIRECT_ACCESS (Size:63M)
Target:iqn.2026-11.com.example:array01.logs Portal:[2001:db8:30::100]:3260,2
Lun:0    Type:STORAGE_ARRAY_CONTROLLER
"""
CAPACITY = """RETURNED LOGICAL BLOCK ADDRESS:131071
LOGICAL BLOCK LENGTH IN BYTES:512
P_TYPE:0 PROT_EN:0
Total size:67108864
"""
IQN = "iqn.2026-11.com.example:array01.ds01"
PORTAL = "198.18.30.100:3260"


def test_iscsi_ls_is_parsed_into_targets_and_luns() -> None:
    found = libiscsi.parse_ls(LS)
    assert [(t.iqn, t.portal, t.tpgt) for t in found] == [
        (IQN, PORTAL, 1),
        ("iqn.2026-11.com.example:array01.logs", "[2001:db8:30::100]:3260", 2)]
    assert [(lun.lun, lun.type) for lun in found[0].luns] == [
        (0, "STORAGE_ARRAY_CONTROLLER"), (1, "DIRECT_ACCESS"), (2, "DIRECT_ACCESS")]
    assert libiscsi.parse_ls("") == []
    assert libiscsi.parse_ls("iscsi_discovery failed\nLun:1 Type:DIRECT_ACCESS\n") == []


@given(st.text(max_size=400))
def test_any_iscsi_ls_output_parses_without_raising(text: str) -> None:
    for target in libiscsi.parse_ls(text):
        assert target.iqn and target.portal


def test_readcapacity16_gives_bytes_and_block_size() -> None:
    assert libiscsi.parse_capacity(CAPACITY) == (64 << 20, 512)
    try:
        libiscsi.parse_capacity("Total size:12\n")
    except ValueError as err:
        assert "block length" in str(err)
    else:
        raise AssertionError("a capacity without a block length was accepted")


def test_urls_and_the_binding_environment() -> None:
    assert libiscsi.portal_url(PORTAL) == "iscsi://198.18.30.100:3260"
    assert libiscsi.portal_url(PORTAL, IQN, 2) == f"iscsi://{PORTAL}/{IQN}/2"
    assert libiscsi.command("ns1", "iscsi-ls", "-s") == ["ip", "netns", "exec", "ns1",
                                                           "iscsi-ls", "-s"]
    os.environ["LIBISCSI_BIND_INTERFACES"] = "eth9"
    try:
        assert libiscsi.environment("vmk2")["LIBISCSI_BIND_INTERFACES"] == "vmk2"
        assert "LIBISCSI_BIND_INTERFACES" not in libiscsi.environment(None)
    finally:
        del os.environ["LIBISCSI_BIND_INTERFACES"]


def _scan(channel: int, vmk: str, targets: list[tuple[str, str, list[int]]]) -> Scan:
    return Scan(channel, vmk, PORTAL, tuple(
        ScannedTarget(iqn, portal, 1, tuple(ScannedLun(n, n << 20, 512) for n in luns))
        for iqn, portal, luns in targets))


def test_one_path_per_bound_adapter_and_lun_named_as_esxi_does() -> None:
    scans = [_scan(c, v, [(IQN, PORTAL, [1, 2])]) for c, v in ((0, "vmk2"), (1, "vmk3"))]
    found = paths("vmhba64", scans)
    assert [p.runtime_name for p in found] == [
        "vmhba64:C0:T0:L1", "vmhba64:C0:T0:L2", "vmhba64:C1:T0:L1", "vmhba64:C1:T0:L2"]
    assert [p.vmk for p in found] == ["vmk2", "vmk2", "vmk3", "vmk3"]
    assert [p.session for p in found[::2]] == ["00023d000001", "00023d000002"]
    listed = devices(found)
    assert [(d.lun, d.paths, d.size) for d in sorted(listed, key=lambda d: d.lun)] == [
        (1, 2, 1 << 20), (2, 2, 2 << 20)]


def test_target_numbers_are_the_same_on_every_channel() -> None:
    other = "iqn.2026-11.com.example:array02.ds02"
    scans = [_scan(0, "vmk2", [(other, "198.18.30.101:3260", [1]), (IQN, PORTAL, [1])]),
             _scan(1, "vmk3", [(IQN, PORTAL, [1])])]
    names = {(p.vmk, p.iqn): p.runtime_name for p in paths("vmhba64", scans)}
    assert names == {("vmk2", IQN): "vmhba64:C0:T0:L1", ("vmk2", other): "vmhba64:C0:T1:L1",
                     ("vmk3", IQN): "vmhba64:C1:T0:L1"}


@given(st.integers(min_value=1, max_value=4), st.lists(st.integers(1, 255), min_size=1,
                                                      max_size=6, unique=True))
def test_paths_are_channels_times_luns_and_each_device_has_one_per_channel(
        channels: int, luns: list[int]) -> None:
    scans = [_scan(c, f"vmk{c + 2}", [(IQN, PORTAL, luns)]) for c in range(channels)]
    found = paths("vmhba64", scans)
    assert len(found) == channels * len(luns)
    assert len({p.runtime_name for p in found}) == len(found)
    assert {d.paths for d in devices(found)} == {channels}
    assert [p.runtime_name for p in found] == sorted(
        (p.runtime_name for p in found), key=lambda n: tuple(int(x) for x in re.findall(r"\d+", n)))


@given(st.from_regex(r"iqn\.20[0-9]{2}-0[1-9]\.[a-z]{1,8}:[a-z0-9.]{1,20}", fullmatch=True),
       st.integers(1, 255))
def test_device_ids_are_naa_and_the_same_for_every_host(iqn: str, lun: int) -> None:
    name = device_id(iqn, lun)
    assert re.fullmatch(r"naa\.6[0-9a-f]{31}", name)
    assert name == device_id(iqn, lun) != device_id(iqn, lun % 255 + 1)


def test_initiator_names_look_like_esxis() -> None:
    assert re.fullmatch(r"iqn\.1998-01\.com\.vmware:esx01-[0-9a-f]{8}", initiator_name("esx01"))
    assert initiator_name("esx01") != initiator_name("esx02")


def test_a_labs_tgtd_is_found_by_its_pid_file_marker_only() -> None:
    assert tgt.marker("lab1") == "/labs/lab1/arrays/"
    assert tgt.marker("lab1") not in "/run/vmknet/labs/lab10/arrays/a/tgtd.pid"


def test_a_failed_tgtd_is_explained_by_its_cause_not_its_noise(tmp_path: Path) -> None:
    log = tmp_path / "tgtd.log"
    log.write_text("tgtd: iser_ib_init(3431) Failed to initialize RDMA; load kernel modules?\n"
                   "-C argument value '45000' out of range\n"
                   "Try `tgtd --help' for more information.\n", encoding="utf-8")
    assert tgt._last(log) == "-C argument value '45000' out of range"
    log.write_text("tgtd: bs_init(387) use signalfd notification\n", encoding="utf-8")
    assert tgt._last(log) == "tgtd: bs_init(387) use signalfd notification"
    assert tgt._last(tmp_path / "missing.log") == "no log"
