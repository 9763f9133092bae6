"""vmkping on a real lab: DF 8972 passes at MTU 9000 and fails with 'Message too long' at 1500."""

from __future__ import annotations

import pytest
from traffickit import two_hosts, up, wait_path

from vmknet.dataplane.linux import LinuxBackend
from vmknet.errors import InvalidArgument
from vmknet.model import DEFAULT_STACK
from vmknet.traffic import ping


@pytest.mark.parametrize("mtu", [9000, 1500])
def test_df_jumbo_vmkping_needs_mtu_9000(prefix: str, mtu: int) -> None:
    dc = two_hosts(mtu=mtu)
    lab = up(dc, prefix)
    try:
        wait_path(lab, "esx01", DEFAULT_STACK, "198.18.4.12", source="198.18.4.11")
        lines: list[str] = []
        result = ping.vmkping(dc, lab, "esx01", "198.18.4.12", vmk="vmk1", df=True, size=8972,
                              count=2, interval=0.1,
                              report=lambda e: lines.append(ping.event_line(e)))
        if mtu == 9000:
            assert result.received == 2, lines
            assert lines[0].startswith("8980 bytes from 198.18.4.12: icmp_seq=0 ttl=64 time=")
            rtts = [r.rtt_ms for r in result.replies]
            print(f"\nDF 8972 at MTU 9000: rtt {min(rtts):.3f}-{max(rtts):.3f} ms")
        else:
            assert result.received == 0
            assert lines == ["sendto() failed (Message too long)"] * 2
            assert ping.vmkping(dc, lab, "esx01", "198.18.4.12", vmk="vmk1", df=True,
                                size=1472, count=1).ok  # 1500 - 28 still fits
        # Without DF the kernel fragments, as vmkping does without -d.
        assert ping.vmkping(dc, lab, "esx01", "198.18.4.12", vmk="vmk1", size=8972, count=1).ok
    finally:
        LinuxBackend().cleanup(prefix)


def test_vmkping_from_a_stack_without_a_route_gets_nothing_back(prefix: str) -> None:
    """NS-2: the vmotion stack has no route to the management subnet of the other host."""
    dc = two_hosts(mtu=1500, vmotion_stack=True)
    lab = up(dc, prefix)
    try:
        wait_path(lab, "esx01", "vmotion", "198.18.4.12")
        assert ping.vmkping(dc, lab, "esx01", "198.18.4.12", netstack="vmotion", count=1).ok
        lost = ping.vmkping(dc, lab, "esx01", "198.18.0.12", netstack="vmotion", count=1,
                            timeout=0.3)
        assert not lost.ok and lost.errors == ["sendto() failed (Network is unreachable)"]
        with pytest.raises(InvalidArgument):
            ping.vmkping(dc, lab, "esx01", "198.18.4.12", vmk="vmk1", netstack=DEFAULT_STACK)
    finally:
        LinuxBackend().cleanup(prefix)
