"""Pure parts of vmknet.traffic: /proc/net parsing, vmkping lines, check planning, esxcli rows."""

from __future__ import annotations

import socket
from pathlib import Path

from vmknet import resolve
from vmknet.cli.esxcli.kernel import connection_rows, kernel_route_rows, neighbor_rows
from vmknet.model import Service
from vmknet.state import load_file
from vmknet.traffic import checks, ping
from vmknet.traffic.icmp import EchoResult, Reply
from vmknet.traffic.kernel_info import NeighInfo, RouteInfo, parse_proc_net
from vmknet.traffic.sockets import receiving_role

LAB = Path(__file__).resolve().parents[2] / "examples" / "lab.yaml"

TCP = """\
  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0B0412C6:1F40 00000000:0000 0A 00000000:00000002 00:00000000 00000000     0        0 4711 1
   1: 0B0412C6:84CB 0C0412C6:1F40 01 00000010:00000000 00:00000000 00000000     0        0 4712 1
"""
TCP6 = """\
  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: B80D0120100000000000000011000000:01BB 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 4713 1
   1: 0000000000000000FFFF00000B0412C6:1F40 0000000000000000FFFF00000C0412C6:D431 01 00000000:00000000 00:00000000 00000000     0        0 4714 1
"""  # noqa: E501


def test_proc_net_tcp_rows_decode_addresses_ports_states_and_queues() -> None:
    rows = parse_proc_net("tcp", TCP)
    assert [(r.local, r.remote, r.state, r.recv_q, r.send_q, r.inode) for r in rows] == [
        (("198.18.4.11", 8000), ("0.0.0.0", 0), "LISTEN", 2, 0, 4711),
        (("198.18.4.11", 33995), ("198.18.4.12", 8000), "ESTABLISHED", 0, 16, 4712)]


def test_proc_net_tcp6_rows_show_v4_mapped_addresses_as_ipv4() -> None:
    rows = parse_proc_net("tcp6", TCP6)
    assert rows[0].local == ("2001:db8:0:10::11", 443)
    assert rows[1].local == ("198.18.4.11", 8000) and rows[1].remote == ("198.18.4.12", 54321)


def test_vmkping_lines_are_esxis() -> None:
    result = EchoResult("198.18.4.12", 8972, sent=3, replies=[
        Reply(0, 8980, 64, 0.181, "198.18.4.12"), Reply(1, 8980, 64, 0.139, "198.18.4.12"),
        Reply(2, 8980, 64, 0.169, "198.18.4.12")])
    assert ping.header_line("198.18.4.12", 8972) == \
        "PING 198.18.4.12 (198.18.4.12): 8972 data bytes"
    assert ping.reply_line(result.replies[0]) == \
        "8980 bytes from 198.18.4.12: icmp_seq=0 ttl=64 time=0.181 ms"
    assert ping.summary_lines(result) == [
        "", "--- 198.18.4.12 ping statistics ---",
        "3 packets transmitted, 3 packets received, 0% packet loss",
        "round-trip min/avg/max = 0.139/0.163/0.181 ms"]
    lost = EchoResult("198.18.4.12", 8972, sent=3, errors=["sendto() failed (Message too long)"])
    assert ping.summary_lines(lost)[2:] == [
        "3 packets transmitted, 0 packets received, 100% packet loss"]
    assert ping.loss_percent(3, 2) == "33.3%"


def test_receiving_role_matches_resolve() -> None:
    for service in Service:
        _, target_role = resolve._ROLES.get(service, (service, service))
        assert receiving_role(service) is target_role


def test_check_plan_of_the_example_lab() -> None:
    dc = load_file(LAB)
    probes, failed = checks.plan(dc, "lab")
    assert failed == []
    assert checks.groups(dc) == [["esx01", "esx02", "esx03"]]
    per = {(p.check, p.service) for p in probes}
    assert ("large-packet", "vMotion") in per and ("gateway", "vmotion") in per
    # 6 ordered pairs x (mgmt 1 + vMotion 2 + provisioning 1 + FT 1 + vSAN 1) x 2, + 12 gateways
    assert len(probes) == 6 * 6 * 2 + 12
    sizes = {(p.service, p.size) for p in probes if p.check == "large-packet"}
    assert sizes == {("management", 1472), ("vMotion", 8972), ("provisioning", 1472),
                     ("vSAN", 8972), ("FT logging", 8972)}
    vm = next(p for p in probes if p.service == "vMotion" and "esx03" in p.target)
    assert vm.ns == "vmkl-lab.esx01.vmotion" and vm.df is False and vm.device == "vmk1"


def test_check_plan_reports_a_missing_adapter_as_a_failed_path() -> None:
    dc = load_file(LAB)
    del dc.hosts["esx03"].vmknics["vmk4"]  # esx03 loses its vSAN adapter (REQ-3)
    _, failed = checks.plan(dc, "lab")
    assert {(r.check, r.service, r.ok) for r in failed} == {("path", "vSAN", False)}
    assert all("esx03" in (r.source, r.target) for r in failed) and len(failed) == 4


def test_routed_pairs_take_the_router_mtu_into_account() -> None:
    dc = load_file(LAB)
    for iface in dc.physical.routers["rtr01"].interfaces:
        if iface.vlan == 41:
            iface.mtu = 1500
    flows = resolve.resolve(dc, Service.VMOTION, "esx01", "esx03")
    assert {checks.path_mtu(dc, f) for f in flows} == {1500}
    flows = resolve.resolve(dc, Service.VMOTION, "esx01", "esx02")  # same subnet: not routed
    assert {checks.path_mtu(dc, f) for f in flows} == {9000}


def test_esxcli_rows_from_kernel_reads() -> None:
    dc = load_file(LAB)
    h = dc.hosts["esx01"]
    conns = connection_rows(h, "vmotion", parse_proc_net("tcp", TCP), {4711: (42, "vmknet")})
    assert conns[0] == {"Proto": "tcp", "Recv Q": 2, "Send Q": 0,
                        "Local Address": "198.18.4.11:8000", "Foreign Address": "0.0.0.0:0",
                        "State": "LISTEN", "World ID": 42, "CC Algo": "newreno",
                        "World Name": "vmknet"}
    routes = kernel_route_rows(h, "vmotion", 4, [
        RouteInfo(socket.AF_INET, "198.18.4.0", 24, None, 3, "198.18.4.11", 2),
        RouteInfo(socket.AF_INET, None, 0, "198.18.4.1", 3, None, 4)], {3: "vmk1"})
    assert [r["Network"] for r in routes] == ["default", "198.18.4.0"]
    assert routes[1] == {"Network": "198.18.4.0", "Netmask": "255.255.255.0",
                         "Gateway": "0.0.0.0", "Interface": "vmk1", "Source": "MANUAL"}
    neigh = neighbor_rows(h, "vmotion", [
        NeighInfo(socket.AF_INET, "198.18.4.12", "00:50:56:aa:bb:cc", 3, "Reachable", 10)],
        {3: "vmk1"})
    assert neigh == [{"Neighbor": "198.18.4.12", "Mac Address": "00:50:56:aa:bb:cc",
                      "Vmknic": "vmk1", "Expiry": "20 sec", "State": "Reachable",
                      "Type": "Dynamic"}]
