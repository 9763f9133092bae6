"""Traffic through what LinuxBackend builds: ping, STP failover, jumbo frames, policy routing.

Every wait is bounded; addresses are from 198.18.0.0/15 and 2001:db8::/32 only.
"""

from __future__ import annotations

import shutil
from dataclasses import replace

import pytest
from kernelkit import ops_for, ping, port_states, wait_until

from vmknet.dataplane.kops import DeleteRule, ModifyLink
from vmknet.dataplane.kstate import Address, KernelState, Link, Route, Rule
from vmknet.dataplane.linux import LinuxBackend

pytestmark = pytest.mark.skipif(shutil.which("ping") is None,
                                reason="needs ping (Debian package iputils-ping)")


def build(backend: LinuxBackend, state: KernelState) -> None:
    for op in ops_for(state):
        backend.execute(op)


def wire(st: KernelState, a: tuple[str, str], b: tuple[str, str], mtu: int = 1500) -> None:
    st.add_veth(Link(a[0], a[1], "veth", mtu=mtu), Link(b[0], b[1], "veth", mtu=mtu))


def test_veth_across_namespaces_pings_v4_and_v6(backend: LinuxBackend, prefix: str) -> None:
    a, b = prefix + "a", prefix + "b"
    st = KernelState(namespaces={a, b})
    wire(st, (a, "v0"), (b, "v1"))
    st.addresses |= {Address(a, "v0", "198.18.1.1/24"), Address(b, "v1", "198.18.1.2/24"),
                     Address(a, "v0", "2001:db8:1::1/64"), Address(b, "v1", "2001:db8:1::2/64")}
    build(backend, st)
    assert ping(a, "198.18.1.2") and ping(b, "198.18.1.1")
    assert ping(a, "2001:db8:1::2") and ping(b, "2001:db8:1::1")


def test_jumbo_df_ping_passes_at_9000_and_fails_at_1500(backend: LinuxBackend,
                                                        prefix: str) -> None:
    a, b = prefix + "a", prefix + "b"
    st = KernelState(namespaces={a, b})
    wire(st, (a, "v0"), (b, "v1"), mtu=9000)
    st.addresses |= {Address(a, "v0", "198.18.2.1/24"), Address(b, "v1", "198.18.2.2/24")}
    build(backend, st)
    assert ping(a, "198.18.2.2", size=8972, df=True)
    for key in ((a, "v0"), (b, "v1")):
        link = st.links[key]
        backend.execute(ModifyLink(link, replace(link, mtu=1500)))
    assert not ping(a, "198.18.2.2", size=8972, df=True)
    assert ping(a, "198.18.2.2", size=1472, df=True)  # 1500 - 28: still fits


def test_policy_rule_sends_packets_from_an_address_through_its_table(
        backend: LinuxBackend, prefix: str) -> None:
    """h has two uplinks; only y (behind the second) owns 198.19.0.1. Main goes to x."""
    h, x, y = prefix + "h", prefix + "x", prefix + "y"
    st = KernelState(namespaces={h, x, y})
    wire(st, (h, "ux"), (x, "d"))
    wire(st, (h, "uy"), (y, "d"))
    st.addresses |= {Address(h, "ux", "198.18.3.1/24"), Address(x, "d", "198.18.3.2/24"),
                     Address(h, "uy", "198.18.4.1/24"), Address(y, "d", "198.18.4.2/24"),
                     Address(y, "lo", "198.19.0.1/32")}
    st.routes |= {Route(h, "default", gateway="198.18.3.2"),
                  Route(h, "default", gateway="198.18.4.2", dev="uy", table=200)}
    rule = Rule(h, 200, "198.18.4.1/32", 200)
    st.rules.add(rule)
    build(backend, st)
    assert ping(h, "198.19.0.1", source="198.18.4.1")  # the rule: table 200, via y
    assert not ping(h, "198.19.0.1", source="198.18.3.1")  # main: via x, which lacks it
    backend.execute(DeleteRule(rule))
    assert not ping(h, "198.19.0.1", source="198.18.4.1")  # without the rule: main, via x


def test_stp_fails_over_to_the_backup_wire_and_back(backend: LinuxBackend, prefix: str) -> None:
    """Host bridge with two wires to a root switch; cost 10 is preferred, 100 is the backup.

    Pulling the preferred wire (its far end down) moves traffic to the backup
    within ~2 x forward delay (listening + learning, 2 s each); restoring it
    moves traffic back. Both times are measured and printed.
    """
    h, s = prefix + "h", prefix + "s"
    st = KernelState(namespaces={h, s})
    st.add_link(Link(h, "br", "bridge", mac="02:00:00:00:aa:01", stp=True,
                     bridge_priority=32768))
    st.add_link(Link(s, "sw", "bridge", mac="02:00:00:00:aa:02", stp=True, bridge_priority=0))
    st.add_veth(Link(h, "p1", "veth", master="br", port_cost=10, mac="02:00:00:00:01:01"),
                Link(s, "s1", "veth", master="sw", port_cost=10, mac="02:00:00:00:01:02"))
    st.add_veth(Link(h, "p2", "veth", master="br", port_cost=100, mac="02:00:00:00:02:01"),
                Link(s, "s2", "veth", master="sw", port_cost=100, mac="02:00:00:00:02:02"))
    st.addresses |= {Address(h, "br", "198.18.5.1/24"), Address(s, "sw", "198.18.5.2/24")}
    build(backend, st)

    def reachable() -> bool:
        return ping(h, "198.18.5.2", wait=0.3)

    converged = wait_until(lambda: port_states(h) == {"p1": "forwarding", "p2": "blocking"}
                           and reachable(), limit=20)
    assert converged is not None, port_states(h)

    s1 = st.links[(s, "s1")]
    backend.execute(ModifyLink(s1, replace(s1, up=False)))
    failover = wait_until(reachable, limit=20)
    assert failover is not None, f"no failover within 20 s: {port_states(h)}"
    assert port_states(h)["p2"] == "forwarding"

    backend.execute(ModifyLink(replace(s1, up=False), s1))
    back = wait_until(lambda: port_states(h).get("p1") == "forwarding" and reachable(),
                      limit=20)
    assert back is not None, f"no failback within 20 s: {port_states(h)}"
    assert port_states(h)["p2"] == "blocking"
    print(f"\nSTP (forward delay 2 s): converged in {converged:.1f} s; traffic back "
          f"{failover:.1f} s after pulling the preferred wire, and on it again "
          f"{back:.1f} s after restoring it")
    assert failover < 10 and back < 10
