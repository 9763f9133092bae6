"""The secondary applies a checkpoint whole or not at all (vmknet.ft.secondary, socketpair)."""

from __future__ import annotations

import socket

import numpy as np

from vmknet.ft.secondary import Secondary
from vmknet.vm.guest import Guest
from vmknet.vm.memory import GuestMemory, Workload
from vmknet.vm.units import PAGE_SIZE
from vmknet.vmotion import protocol


def _secondary() -> Secondary:
    mem = GuestMemory(8 * PAGE_SIZE)
    return Secondary(Guest("vm", "lab", "esx02", 1, mem, Workload(mem, 0)), "s", 1.0, False)


def _pages(start: int, count: int, value: int, rnd: int) -> bytes:
    return (protocol.pack(protocol.PAGES, rnd, start, count, count * PAGE_SIZE)
            + bytes([value]) * (count * PAGE_SIZE))


def test_checkpoint_applied_only_at_its_end_and_acked() -> None:
    sec = _secondary()
    a, b = socket.socketpair()
    with a, b:
        b.settimeout(1.0)
        a.sendall(_pages(0, 2, 7, 1) + protocol.pack(protocol.ROUND_END, 1))
        a.sendall(_pages(1, 1, 9, 2) + protocol.pack(protocol.ZERO, 2, 0, 1))
        a.sendall(_pages(3, 1, 5, 3))  # checkpoint 3 never ends: the primary died
        a.shutdown(socket.SHUT_WR)
        why = sec._follow(b)
        assert why is not None  # the link is gone, not a BYE
        ack = protocol.unpack(a.recv(protocol.HEADER.size))
        b.close()
        a.settimeout(1.0)
        assert a.recv(1) == b"", "a checkpoint that never ended was acknowledged"
    assert (ack.kind, ack.round) == (protocol.ACK, 1)
    pages = sec.guest.memory.pages
    assert sec.last_applied == 1
    assert (pages[0] == 7).all() and (pages[1] == 7).all()  # round 2 never ended
    assert not pages[2:].any(), "pages of an unfinished checkpoint were applied"


def test_bye_stands_down_and_bad_run_is_a_protocol_error() -> None:
    sec = _secondary()
    a, b = socket.socketpair()
    with a, b:
        a.sendall(protocol.pack(protocol.BYE, 0))
        assert sec._follow(b) is None
    a, b = socket.socketpair()
    with a, b:
        a.sendall(protocol.pack(protocol.ZERO, 2, 6, 5))  # past the end of memory
        assert "bad zero run" in str(sec._follow(b))
    assert not np.asarray(sec.guest.memory.pages).any()
