"""traffic.sockets on a real lab: EX-1 moves vMotion sockets to the vmotion stack; NS-2 isolation.

A socket's stack is checked three ways: its bound address (getsockname), the
namespace whose /proc/net/tcp lists its inode, and the adapter's byte counters.
"""

from __future__ import annotations

import errno
import os
import socket
import threading
from ipaddress import IPv4Address

import pytest
from traffickit import two_hosts, up, wait_path

from vmknet.dataplane.apply import apply
from vmknet.dataplane.linux import LinuxBackend
from vmknet.dataplane.render import render
from vmknet.model import DEFAULT_STACK, Datacenter, Service
from vmknet.ops import interface
from vmknet.traffic import kernel_info, stats
from vmknet.traffic.place import stack_ns
from vmknet.traffic.sockets import Listener, close_all, connect, listen, tcp_socket

PAYLOAD = 1 << 20  # 1 MiB: far above any background traffic on an adapter


def _inode(sock: socket.socket) -> int:
    return int(os.readlink(f"/proc/self/fd/{sock.fileno()}")[len("socket:["):-1])


def _holder(lab: str, host: str, sock: socket.socket) -> list[str]:
    """The stacks of `host` whose namespace lists the socket."""
    inode = _inode(sock)
    found = []
    for stack in (DEFAULT_STACK, "vmotion"):
        ns = stack_ns(lab, host, stack)
        if os.path.exists(f"/run/netns/{ns}") and any(
                c.inode == inode for c in kernel_info.connections(ns)):
            found.append(stack)
    return found


def _drain(listener: Listener, got: list[int]) -> None:
    peer, _ = listener.accept(timeout=5)
    with peer:
        total = 0
        while chunk := peer.recv(1 << 16):
            total += len(chunk)
        got.append(total)


def _send_through(dc: Datacenter, lab: str) -> tuple[list[str], list[tuple[str, str]]]:
    """Connect vMotion esx01 -> esx02, push PAYLOAD per flow: (holder stacks, bound pairs)."""
    listeners = listen(dc, lab, "esx02", Service.VMOTION)
    got: list[int] = []
    readers = [threading.Thread(target=_drain, args=(lst, got)) for lst in listeners]
    for reader in readers:
        reader.start()
    conns = connect(dc, lab, Service.VMOTION, "esx01", "esx02", timeout=5)
    try:
        holders: list[str] = []
        bound = []
        for conn in conns:
            holders += _holder(lab, "esx01", conn.sock)
            bound.append((conn.sock.getsockname()[0], conn.flow.source.vmknic))
            conn.sock.sendall(b"x" * PAYLOAD)
            conn.sock.shutdown(socket.SHUT_WR)
    finally:
        for reader in readers:
            reader.join(timeout=10)
        close_all([*conns, *listeners])
    assert got == [PAYLOAD] * len(conns)
    return holders, bound


def test_ex1_vmotion_sockets_move_to_the_vmotion_stack(prefix: str) -> None:
    dc = two_hosts(mtu=1500)
    lab = up(dc, prefix)
    try:
        wait_path(lab, "esx01", DEFAULT_STACK, "198.18.4.12")
        holders, bound = _send_through(dc, lab)
        assert holders == [DEFAULT_STACK] and bound == [("198.18.4.11", "vmk1")]

        # EX-1: the first vmotion-stack adapter takes vMotion away from vmk1.
        dc2 = dc.model_copy(deep=True)
        interface.add(dc2, "esx01", "vmk2", portgroup="vMotion", netstack="vmotion")
        interface.ipv4_set(dc2, "esx01", "vmk2", type="static",
                           address=IPv4Address("198.18.4.21"),
                           netmask=IPv4Address("255.255.255.0"))
        assert Service.VMOTION not in dc2.hosts["esx01"].vmknics["vmk1"].services
        apply(LinuxBackend(), render(dc2, lab), prefix)
        wait_path(lab, "esx01", "vmotion", "198.18.4.12", source="198.18.4.21")

        before = stats.adapter_counters(dc2, lab, "esx01")
        holders, bound = _send_through(dc2, lab)
        after = stats.adapter_counters(dc2, lab, "esx01")
        assert holders == ["vmotion"] and bound == [("198.18.4.21", "vmk2")]
        assert after["vmk2"].tx_bytes - before["vmk2"].tx_bytes >= PAYLOAD
        assert after["vmk1"].tx_bytes - before["vmk1"].tx_bytes < PAYLOAD // 10
    finally:
        LinuxBackend().cleanup(prefix)


def test_a_vmotion_stack_socket_cannot_reach_the_default_stack(prefix: str) -> None:
    """NS-2: the vmotion stack has no route to vmk0's subnet, though vmk0 is on the same host."""
    dc = two_hosts(mtu=1500, vmotion_stack=True)
    lab = up(dc, prefix)
    try:
        mgmt = listen(dc, lab, "esx01", Service.MANAGEMENT, port=4430)
        try:
            sock = tcp_socket(stack_ns(lab, "esx01", "vmotion"), socket.AF_INET)
            with sock:
                sock.settimeout(2)
                with pytest.raises(OSError) as caught:
                    sock.connect(("198.18.0.11", 4430))
                assert caught.value.errno in (errno.ENETUNREACH, errno.EHOSTUNREACH)
        finally:
            close_all(mgmt)
    finally:
        LinuxBackend().cleanup(prefix)
