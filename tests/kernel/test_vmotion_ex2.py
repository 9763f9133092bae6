"""EX-2 in the kernel: a migration over a default-stack adapter outlives EX-1; the next one
uses the vMotion stack only."""

from __future__ import annotations

import threading
from ipaddress import IPv4Address

from traffickit import two_hosts, up, wait_path
from vmotionkit import vm_processes

from vmknet.dataplane.apply import apply
from vmknet.dataplane.linux import LinuxBackend
from vmknet.dataplane.render import render
from vmknet.model import DEFAULT_STACK
from vmknet.ops import interface
from vmknet.vm import manage
from vmknet.vm.reaper import kill_lab_vms
from vmknet.vmotion import MigrationReport, migrate


def test_ex2_running_migration_completes_next_uses_vmotion_stack(prefix: str) -> None:
    dc = two_hosts(mtu=1500)
    lab = up(dc, prefix)
    try:
        wait_path(lab, "esx01", DEFAULT_STACK, "198.18.4.12")
        manage.create(dc, lab, "ex2", "esx01", 32 << 20, 1_000_000)
        out: list[MigrationReport] = []
        thread = threading.Thread(target=lambda: out.append(
            migrate(dc, lab, "ex2", "esx02", rate_limit=10_000_000)))
        thread.start()

        dc2 = dc.model_copy(deep=True)  # EX-1 fires on both hosts mid-migration
        for host, address in (("esx01", "198.18.4.21"), ("esx02", "198.18.4.22")):
            interface.add(dc2, host, "vmk2", portgroup="vMotion", netstack="vmotion")
            interface.ipv4_set(dc2, host, "vmk2", type="static", address=IPv4Address(address),
                               netmask=IPv4Address("255.255.255.0"))
        apply(LinuxBackend(), render(dc2, lab), prefix)
        thread.join(60)
        first = out[0]
        assert first.completed, first.reason
        assert [(p.source_vmk, p.netstack) for p in first.pairs] == [("vmk1", DEFAULT_STACK)]
        assert first.total_seconds > 1.0  # it really ran across the change

        wait_path(lab, "esx02", "vmotion", "198.18.4.21", source="198.18.4.22")
        second = migrate(dc2, lab, "ex2", "esx01")
        assert second.completed, second.reason
        assert [(p.source_vmk, p.netstack) for p in second.pairs] == [("vmk2", "vmotion")]
    finally:
        kill_lab_vms(lab)
        LinuxBackend().cleanup(prefix)
    assert vm_processes(lab) == []
