"""NFC copies in a real lab: provisioning adapters, PATH-2 fallbacks, NoPath, resume, abort,
sparse files, the server as a process that goes with its lab.

esx01 and esx02 have vmk1 on the vSphereProvisioning stack in 198.18.8.0/24 (VLAN 80,
gateway rtr01). esx03 has only management (PATH-2: vmk0 receives). esx04's provisioning
adapter is in 198.18.9.0/24 without a gateway: it cannot reach esx02's, so esx04 sends from
vmk0 (routed by rtr01) and esx02 still receives on vmk1. esx05's is in 198.18.10.0/24
without a gateway: nobody reaches it (NoPath).
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from labkit import lab_name
from traffickit import wait_path

from vmknet.errors import DataplaneError, NoPath
from vmknet.inventory import Inventory
from vmknet.lab import Lab, lifecycle
from vmknet.model import DEFAULT_STACK, PROVISIONING_STACK, Datacenter
from vmknet.nfc import Datastores, NfcServer, copy_file, copy_tree
from vmknet.nfc import registry as nfc_registry
from vmknet.traffic.stats import adapter_counters

MiB = 1 << 20
HOST = """
  {name}:
    nics: {{vmnic0: {{}}, vmnic1: {{}}}}
    vswitches:
      vSwitch0:
        uplinks: [vmnic0]
        teaming: {{active: [vmnic0]}}
        portgroups: {{Management Network: {{vlan: 10}}}}
      vSwitch1:
        uplinks: [vmnic1]
        teaming: {{active: [vmnic1]}}
        portgroups: {{Prov: {{vlan: {vlan}}}}}
    netstacks:
      defaultTcpipStack: {{gateway: 198.18.0.1}}
      vSphereProvisioning: {{{gw}}}
    vmknics:
      vmk0:
        portgroup: Management Network
        ipv4: {{type: static, address: 198.18.0.{n}/24}}
        services: [management]
{prov}"""
PROV = """      vmk1:
        portgroup: Prov
        netstack: vSphereProvisioning
        ipv4: {{type: static, address: 198.18.{net}.{n}/24}}
"""


def _host(name: str, n: int, net: int | None) -> str:
    gw = "gateway: 198.18.8.1" if net == 8 else ""
    prov = PROV.format(net=net, n=n) if net is not None else ""
    return HOST.format(name=name, n=n, vlan=72 + (net or 8), gw=gw, prov=prov)


NFC_LAB = (
    "physical:\n  controller: {vlan: 10, address: 198.18.0.250/24, gateway: 198.18.0.1}\n"
    "  routers:\n    rtr01:\n      interfaces:\n"
    "        - {vlan: 10, addresses: [198.18.0.1/24]}\n"
    "        - {vlan: 80, addresses: [198.18.8.1/24]}\n"
    "hosts:" + _host("esx01", 11, 8) + _host("esx02", 12, 8) + _host("esx03", 13, None)
    + _host("esx04", 14, 9) + _host("esx05", 15, 10))


@dataclass
class NfcLab:
    inv: Inventory
    lab: Lab
    dc: Datacenter
    stores: Datastores
    store_path: Path

    def root(self, host: str) -> Path:
        return self.stores.root(self.lab.name, host, "ds1")


@pytest.fixture(scope="module")
def nfc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NfcLab]:
    folder = tmp_path_factory.mktemp("nfc")
    (folder / "nfc.yaml").write_text(NFC_LAB, encoding="utf-8")
    inv = Inventory.open(folder / "inventory.db")
    name = lab_name()
    stores = Datastores(folder / "datastores")
    for host in ("esx01", "esx02", "esx03", "esx04", "esx05"):
        stores.create(name, host, "ds1")
    try:
        lifecycle.up(inv, folder / "nfc.yaml", name)
        lab = Lab.named(name)
        for host, stack, target in (("esx01", PROVISIONING_STACK, "198.18.8.12"),
                                    ("esx01", PROVISIONING_STACK, "198.18.0.13"),
                                    ("esx04", DEFAULT_STACK, "198.18.8.12")):
            wait_path(name, host, stack, target)
        yield NfcLab(inv, lab, inv.read(), stores, folder / "inventory.db")
    finally:
        lifecycle.down(inv, name)
    assert nfc_registry.server_pids(name) == []


def make_sparse(path: Path, size: int = 64 * MiB, data: int = 8 * MiB) -> str:
    """`data` bytes of random data in 1 MiB pieces spread over a `size` sparse file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        f.truncate(size)
        pieces = data // MiB
        for i in range(pieces):
            f.seek(i * (size // pieces) + 4096 * i)
            f.write(os.urandom(MiB))
    return digest(path)


def digest(path: Path) -> str:
    h = hashlib.blake2b()
    with open(path, "rb") as f:
        while chunk := f.read(4 * MiB):
            h.update(chunk)
    return h.hexdigest()


def tx(n: NfcLab, host: str, vmk: str) -> int:
    return adapter_counters(n.dc, n.lab, host)[vmk].tx_bytes


def rx(n: NfcLab, host: str, vmk: str) -> int:
    return adapter_counters(n.dc, n.lab, host)[vmk].rx_bytes


def test_copy_over_the_provisioning_adapters_sends_only_data(nfc: NfcLab) -> None:
    src = nfc.root("esx01") / "vm1" / "vm1-flat.vmdk"
    before = make_sparse(src)
    with NfcServer(nfc.dc, nfc.lab, "esx02", nfc.stores) as server:
        assert [(e.vmknic, e.netstack) for e in server.endpoints] == \
            [("vmk1", PROVISIONING_STACK)]
        t0 = (tx(nfc, "esx01", "vmk1"), tx(nfc, "esx01", "vmk0"))
        report = copy_file(nfc.dc, nfc.lab, "esx01", "ds1", "vm1/vm1-flat.vmdk",
                           "esx02", "ds1", "vm1/vm1-flat.vmdk", stores=nfc.stores)
        t1 = (tx(nfc, "esx01", "vmk1"), tx(nfc, "esx01", "vmk0"))
    print("\n" + report.summary())
    dst = nfc.root("esx02") / "vm1" / "vm1-flat.vmdk"
    assert digest(dst) == before == digest(src)  # identical, source unchanged
    assert [(f.source_vmk, f.source_stack, f.target_vmk) for f in report.flows] == \
        [("vmk1", PROVISIONING_STACK, "vmk1")]
    assert "PATH-2" in report.flows[0].reason
    assert t1[0] - t0[0] >= 8 * MiB and t1[1] - t0[1] < MiB  # the bytes went by vmk1
    assert report.logical_size == 64 * MiB and report.data_bytes == 8 * MiB
    assert 8 * MiB <= report.bytes_on_wire < 8.5 * MiB  # data, not the logical size
    assert os.stat(dst).st_blocks * 512 < 16 * MiB  # the holes are holes again
    assert not report.resumed and report.blocks_resent == 0
    assert not (dst.parent / "vm1-flat.vmdk.part").exists()


def test_path2_fallbacks(nfc: NfcLab) -> None:
    make_sparse(nfc.root("esx01") / "a.vmdk", 8 * MiB, 2 * MiB)
    make_sparse(nfc.root("esx04") / "b.vmdk", 8 * MiB, 2 * MiB)
    with NfcServer(nfc.dc, nfc.lab, "esx03", nfc.stores) as s3, \
            NfcServer(nfc.dc, nfc.lab, "esx02", nfc.stores):
        assert [e.vmknic for e in s3.endpoints] == ["vmk0"]  # no provisioning adapter
        to3 = copy_file(nfc.dc, nfc.lab, "esx01", "ds1", "a.vmdk", "esx03", "ds1", "a.vmdk",
                        stores=nfc.stores)
        before = rx(nfc, "esx02", "vmk1")
        from4 = copy_file(nfc.dc, nfc.lab, "esx04", "ds1", "b.vmdk", "esx02", "ds1", "b.vmdk",
                          stores=nfc.stores)
        assert rx(nfc, "esx02", "vmk1") - before >= 2 * MiB  # still received on provisioning
    (f3,) = to3.flows
    assert (f3.source_vmk, f3.target_vmk, f3.target_stack) == ("vmk1", "vmk0", DEFAULT_STACK)
    assert "esx03/vmk0 is fallback to management (PATH-2)" in f3.reason
    (f4,) = from4.flows
    assert (f4.source_vmk, f4.source_stack, f4.target_vmk) == ("vmk0", DEFAULT_STACK, "vmk1")
    assert "fallback to management (PATH-2): vmk1 cannot reach esx02" in f4.reason
    assert digest(nfc.root("esx02") / "b.vmdk") == digest(nfc.root("esx04") / "b.vmdk")


def test_no_path_fails_before_any_data_moves(nfc: NfcLab) -> None:
    make_sparse(nfc.root("esx01") / "c.vmdk", 8 * MiB, 2 * MiB)
    with NfcServer(nfc.dc, nfc.lab, "esx05", nfc.stores):
        before = tx(nfc, "esx01", "vmk1") + tx(nfc, "esx01", "vmk0")
        with pytest.raises(NoPath) as caught:
            copy_file(nfc.dc, nfc.lab, "esx01", "ds1", "c.vmdk", "esx05", "ds1", "c.vmdk",
                      stores=nfc.stores)
        assert tx(nfc, "esx01", "vmk1") + tx(nfc, "esx01", "vmk0") - before < 64 * 1024
    assert "esx05" in str(caught.value)
    assert os.listdir(nfc.root("esx05")) == []


def _killer(server: NfcServer, at: float) -> tuple[list[int], object]:
    fired: list[int] = []

    def progress(done: int, total: int) -> None:
        if not fired and done >= at * total:
            fired.append(server.drop_connections())
    return fired, progress


def test_a_killed_connection_resumes_from_the_part(nfc: NfcLab) -> None:
    src = nfc.root("esx01") / "r.vmdk"
    before = make_sparse(src, 64 * MiB, 8 * MiB)
    with NfcServer(nfc.dc, nfc.lab, "esx02", nfc.stores) as server:
        fired, progress = _killer(server, 0.5)
        report = copy_file(nfc.dc, nfc.lab, "esx01", "ds1", "r.vmdk", "esx02", "ds1", "r.vmdk",
                           stores=nfc.stores, bandwidth_limit=16e6,
                           progress=progress)  # type: ignore[arg-type]
    print("\n" + report.summary())
    assert fired == [1] and report.resumed and report.attempts == 2
    assert digest(nfc.root("esx02") / "r.vmdk") == before == digest(src)
    # Only the blocks the break tore or lost went again, not the whole file.
    assert report.blocks_resent <= 4
    assert report.bytes_on_wire < 8 * MiB + 4 * MiB + 256 * 1024
    assert not (nfc.root("esx02") / "r.vmdk.part").exists()


def test_abort_leaves_no_final_file_and_the_source_unchanged(nfc: NfcLab) -> None:
    src = nfc.root("esx01") / "x.vmdk"
    before = make_sparse(src, 32 * MiB, 8 * MiB)
    with NfcServer(nfc.dc, nfc.lab, "esx02", nfc.stores) as server:
        _, progress = _killer(server, 0.3)
        with pytest.raises(DataplaneError):
            copy_file(nfc.dc, nfc.lab, "esx01", "ds1", "x.vmdk", "esx02", "ds1", "x.vmdk",
                      stores=nfc.stores, bandwidth_limit=16e6, resume=False,
                      progress=progress)  # type: ignore[arg-type]

        def cancel(done: int, total: int) -> None:
            if done > total // 4:
                raise KeyboardInterrupt  # the user gave up
        with pytest.raises(KeyboardInterrupt):
            copy_file(nfc.dc, nfc.lab, "esx01", "ds1", "x.vmdk", "esx02", "ds1", "x.vmdk",
                      stores=nfc.stores, progress=cancel)
        deadline = time.monotonic() + 2  # the server drops a temporary .part as its session ends
        while (nfc.root("esx02") / "x.vmdk.part").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
    assert not (nfc.root("esx02") / "x.vmdk").exists()
    assert not (nfc.root("esx02") / "x.vmdk.part").exists()
    assert digest(src) == before


def test_copy_tree_of_a_vm_directory(nfc: NfcLab) -> None:
    vm = nfc.root("esx01") / "vm2"
    vm.mkdir()
    (vm / "vm2.vmx").write_text('displayName = "vm2"\n', encoding="utf-8")
    make_sparse(vm / "vm2-flat.vmdk", 16 * MiB, 2 * MiB)
    make_sparse(vm / "vm2_1-flat.vmdk", 16 * MiB, 1 * MiB)
    with NfcServer(nfc.dc, nfc.lab, "esx02", nfc.stores):
        reports = copy_tree(nfc.dc, nfc.lab, "esx01", "ds1", "vm2", "esx02", "ds1", "vm2",
                            stores=nfc.stores)
    assert len(reports) == 3
    for name in ("vm2.vmx", "vm2-flat.vmdk", "vm2_1-flat.vmdk"):
        assert digest(nfc.root("esx02") / "vm2" / name) == digest(vm / name)


def test_the_server_process_goes_with_its_lab_record(nfc: NfcLab) -> None:
    make_sparse(nfc.root("esx01") / "p.vmdk", 8 * MiB, 1 * MiB)
    proc = subprocess.Popen(
        [sys.executable, "-m", "vmknet.nfc.server", f"--lab={nfc.lab.name}", "--host=esx02",
         f"--store={nfc.store_path}", f"--base={nfc.stores.base}"],
        stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        assert "vmk1 198.18.8.12" in proc.stdout.readline()
        record = nfc_registry.record_path(nfc.lab.name, "esx02")
        assert record.exists() and proc.pid in nfc_registry.server_pids(nfc.lab.name)
        report = copy_file(nfc.dc, nfc.lab, "esx01", "ds1", "p.vmdk", "esx02", "ds1", "p.vmdk",
                           stores=nfc.stores)
        assert report.data_bytes == MiB
        record.unlink()  # what `lab down` does to /run/vmknet/labs/<lab>/
        assert proc.wait(5) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)
    assert nfc_registry.server_pids(nfc.lab.name) == []


def test_servers_are_stopped_by_lab_name(nfc: NfcLab) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "vmknet.nfc.server", f"--lab={nfc.lab.name}", "--host=esx01",
         f"--store={nfc.store_path}", f"--base={nfc.stores.base}"], stdout=subprocess.PIPE)
    try:
        assert proc.stdout is not None and proc.stdout.readline()
        assert nfc_registry.stop_servers(nfc.lab.name) == [proc.pid]
        assert proc.wait(5) == 0
        assert not nfc_registry.record_path(nfc.lab.name, "esx01").exists()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)


def test_concurrent_copies_share_one_server(nfc: NfcLab) -> None:
    for i in range(3):
        make_sparse(nfc.root("esx01") / f"m{i}.vmdk", 8 * MiB, 2 * MiB)
    errors: list[BaseException] = []

    def one(i: int) -> None:
        try:
            copy_file(nfc.dc, nfc.lab, "esx01", "ds1", f"m{i}.vmdk", "esx02", "ds1",
                      f"m{i}.vmdk", stores=nfc.stores)
        except BaseException as err:
            errors.append(err)
    with NfcServer(nfc.dc, nfc.lab, "esx02", nfc.stores):
        threads = [threading.Thread(target=one, args=(i,)) for i in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
    assert errors == []
    for i in range(3):
        assert digest(nfc.root("esx02") / f"m{i}.vmdk") == digest(nfc.root("esx01") /
                                                                    f"m{i}.vmdk")


def test_a_dense_file_sends_its_size_and_reports_throughput(nfc: NfcLab) -> None:
    src = nfc.root("esx01") / "dense.vmdk"
    before = make_sparse(src, 64 * MiB, 64 * MiB)
    with NfcServer(nfc.dc, nfc.lab, "esx02", nfc.stores):
        report = copy_file(nfc.dc, nfc.lab, "esx01", "ds1", "dense.vmdk", "esx02", "ds1",
                           "dense.vmdk", stores=nfc.stores)
        limited = copy_file(nfc.dc, nfc.lab, "esx01", "ds1", "dense.vmdk", "esx02", "ds1",
                            "dense2.vmdk", stores=nfc.stores, bandwidth_limit=32e6)
    print("\n" + report.summary() + "\n" + limited.summary())
    assert digest(nfc.root("esx02") / "dense.vmdk") == before
    assert 64 * MiB <= report.bytes_on_wire < 64.5 * MiB
    # The token bucket holds the limit (within its 1/20 s burst).
    assert 0.85 * 32e6 <= limited.wire_throughput <= 1.1 * 32e6
