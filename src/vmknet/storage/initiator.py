"""vmknet's own iSCSI initiator: one session, READ(10) and WRITE(10), over one bound adapter.

libiscsi's tools discover, log in and measure; they do not write a chosen
block and read it back. This small initiator does, so a test can write
through one path and read through another (another adapter, another host)
and compare bytes. It is checked against a real target (tgtd) only.

The socket is made in the bound adapter's stack namespace, bound to the
adapter's interface (SO_BINDTODEVICE, as LIBISCSI_BIND_INTERFACES does) and
to its address, so the session leaves by exactly that adapter.

    with Session.open(ns, "vmk2", "198.18.30.11", portal, initiator, iqn) as s:
        s.write(1, lba=0, data=b"x" * 512)
        assert s.read(1, lba=0, blocks=1) == b"x" * 512
"""

from __future__ import annotations

import contextlib
import os
import socket
from collections.abc import Callable
from types import TracebackType
from typing import TypeVar

from ..dataplane.linux import netns
from ..errors import DataplaneError
from . import pdu

T = TypeVar("T")
TIMEOUT = 5.0
UNIT_ATTENTION_RETRIES = 3
MAX_RECV = 262144  # MaxRecvDataSegmentLength we declare
DEFAULT_TARGET_RECV = 8192  # the target's, until it declares one (RFC 7143 13.12)


class IscsiError(DataplaneError):
    """A login refused, a SCSI command failed, or the target broke the protocol."""


class UnitAttention(IscsiError):
    """CHECK CONDITION with sense key UNIT ATTENTION: the command is to be repeated."""


class Session:
    def __init__(self, sock: socket.socket, initiator: str, target: str) -> None:
        self.sock, self.initiator, self.target = sock, initiator, target
        self.isid = bytes([0x00, 0x02, 0x3D]) + os.urandom(3)  # random-qualifier ISID
        self.itt = 0
        self.cmdsn = 0
        self.exp_statsn = 0
        self.target_recv = DEFAULT_TARGET_RECV
        self.immediate_data = False
        self.first_burst = 65536

    # ------------------------------------------------------------- opening

    @classmethod
    def open(cls, ns: str, ifname: str | None, source: str | None, portal: str,
             initiator: str, target: str, timeout: float = TIMEOUT) -> Session:
        """Connect from the adapter (`ifname`, `source`) in `ns` to `portal` and log in."""
        host, _, port = portal.rpartition(":")
        host = host.strip("[]")
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = netns.in_netns(ns, lambda: socket.socket(family, socket.SOCK_STREAM))
        try:
            sock.settimeout(timeout)
            if ifname is not None:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, ifname.encode())
            if source is not None:
                sock.bind((source, 0))
            sock.connect((host, int(port)))
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            session = cls(sock, initiator, target)
            session.login()
        except OSError as err:
            sock.close()
            raise IscsiError(f"iSCSI session to {portal} via {ifname or 'any adapter'}: "
                             f"{err.strerror or type(err).__name__}", portal=portal) from None
        except BaseException:
            sock.close()
            raise
        return session

    def __enter__(self) -> Session:
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        with contextlib.suppress(OSError, IscsiError):
            self.sock.sendall(pdu.logout(self._tag(), self.cmdsn, self.exp_statsn))
            self._expect(pdu.LOGOUT_RESPONSE)
        self.sock.close()

    # ------------------------------------------------------------- the wire

    def _tag(self) -> int:
        self.itt = (self.itt + 1) % pdu.NO_TAG
        return self.itt

    def _recv_exact(self, n: int) -> bytearray:
        # Into one buffer (recv_into): a 256 KiB Data-In segment is copied once, not per chunk.
        buf = bytearray(n)
        view = memoryview(buf)
        got = 0
        while got < n:
            k = self.sock.recv_into(view[got:], n - got)
            if not k:
                raise IscsiError(f"the target {self.target} closed the connection")
            got += k
        return buf

    def _recv(self) -> pdu.Pdu:
        """One PDU; a target's NOP-In ping is answered on the way."""
        while True:
            header = bytes(self._recv_exact(pdu.BHS))
            ahs, length = pdu.lengths(header)
            if length > MAX_RECV:
                raise IscsiError(f"the target sent a {length}-byte data segment, more than "
                                 f"the {MAX_RECV} declared")
            self._recv_exact(ahs)
            data = self._recv_exact(length + (-length % 4))  # padded to 4 bytes
            if len(data) != length:
                del data[length:]
            got = pdu.Pdu(header, bytes(data))
            if got.opcode == pdu.REJECT:
                raise IscsiError(f"the target {self.target} rejected a PDU (reason "
                                 f"{header[2]:#x})")
            if got.opcode != pdu.NOP_IN:
                return got
            ttt = got.u32(20)
            if ttt != pdu.NO_TAG:  # a ping that wants an answer
                self.sock.sendall(pdu.nop_out(pdu.NO_TAG, ttt, self.cmdsn, self.exp_statsn))

    def _expect(self, opcode: int) -> pdu.Pdu:
        got = self._recv()
        if got.opcode != opcode:
            raise IscsiError(f"expected opcode {opcode:#x} from {self.target}, got "
                             f"{got.opcode:#x}")
        self._status_seen(got)
        return got

    def _status_seen(self, got: pdu.Pdu) -> None:
        self.exp_statsn = got.u32(24) + 1

    # --------------------------------------------------------------- login

    def login(self) -> None:
        """Operational negotiation straight to full feature phase (no authentication)."""
        keys = {
            "InitiatorName": self.initiator, "TargetName": self.target,
            "SessionType": "Normal", "HeaderDigest": "None", "DataDigest": "None",
            "MaxRecvDataSegmentLength": str(MAX_RECV), "ImmediateData": "Yes",
            "InitialR2T": "Yes", "MaxConnections": "1", "ErrorRecoveryLevel": "0",
        }
        itt = self._tag()
        for _ in range(4):  # a target may answer in more than one round
            self.sock.sendall(pdu.login(self.isid, itt, self.cmdsn, self.exp_statsn, keys))
            got = self._expect(pdu.LOGIN_RESPONSE)
            status = (got.header[36], got.header[37])
            if status != (0, 0):
                raise IscsiError(f"login to {self.target} refused: status class "
                                 f"{status[0]}, detail {status[1]}", target=self.target)
            self._negotiated(pdu.parse_keys(got.data))
            self.cmdsn = got.u32(28)  # ExpCmdSN
            if got.flags & pdu.FINAL and got.flags & 0x03 == pdu.FULL_FEATURE:
                return
            keys = {}
        raise IscsiError(f"login to {self.target} did not reach the full feature phase")

    def _negotiated(self, keys: dict[str, str]) -> None:
        if "MaxRecvDataSegmentLength" in keys:
            self.target_recv = int(keys["MaxRecvDataSegmentLength"])
        if "ImmediateData" in keys:
            self.immediate_data = keys["ImmediateData"] == "Yes"
        if "FirstBurstLength" in keys:
            self.first_burst = int(keys["FirstBurstLength"])

    # ---------------------------------------------------------------- SCSI

    def read(self, lun: int, lba: int, blocks: int, block: int = 512) -> bytes:
        """`blocks` blocks from `lba` of LUN `lun`."""
        return self._retried(lambda: self._read_once(lun, lba, blocks, block))

    def write(self, lun: int, lba: int, data: bytes, block: int = 512) -> None:
        """`data` (whole blocks) to LUN `lun` from `lba`."""
        self._retried(lambda: self._write_once(lun, lba, data, block))

    def _retried(self, command: Callable[[], T]) -> T:
        # The first command of a new session meets the target's UNIT ATTENTION (power on,
        # reset): SCSI says to report it once and repeat the command, as every initiator does.
        for _ in range(UNIT_ATTENTION_RETRIES):
            try:
                return command()
            except UnitAttention:
                continue
        return command()

    def _read_once(self, lun: int, lba: int, blocks: int, block: int) -> bytes:
        length = blocks * block
        itt = self._tag()
        self.sock.sendall(pdu.scsi_command(lun, itt, self.cmdsn, self.exp_statsn,
                                           pdu.cdb_10(pdu.READ_10, lba, blocks), length,
                                           read=True, write=False))
        self.cmdsn += 1
        data = bytearray(length)
        while True:
            got = self._recv()
            if got.opcode == pdu.DATA_IN:
                offset = got.u32(40)
                data[offset:offset + len(got.data)] = got.data
                if got.flags & pdu.STATUS_FLAG:
                    self._status_seen(got)
                    self._check(got, "READ(10)")
                    return bytes(data)
            elif got.opcode == pdu.SCSI_RESPONSE:
                self._status_seen(got)
                self._check(got, "READ(10)")
                return bytes(data)
            else:
                raise IscsiError(f"unexpected opcode {got.opcode:#x} during READ(10)")

    def _write_once(self, lun: int, lba: int, data: bytes, block: int) -> None:
        if not data or len(data) % block:
            raise IscsiError(f"write {len(data)} bytes: a whole number of {block}-byte blocks")
        itt = self._tag()
        first = data[:min(self.target_recv, self.first_burst)] if self.immediate_data else b""
        self.sock.sendall(pdu.scsi_command(lun, itt, self.cmdsn, self.exp_statsn,
                                           pdu.cdb_10(pdu.WRITE_10, lba, len(data) // block),
                                           len(data), read=False, write=True,
                                           immediate_data=first))
        self.cmdsn += 1
        while True:
            got = self._recv()
            if got.opcode == pdu.R2T:
                self._send_solicited(lun, itt, got, data)
            elif got.opcode == pdu.SCSI_RESPONSE:
                self._status_seen(got)
                self._check(got, "WRITE(10)")
                return
            else:
                raise IscsiError(f"unexpected opcode {got.opcode:#x} during WRITE(10)")

    def _send_solicited(self, lun: int, itt: int, r2t: pdu.Pdu, data: bytes) -> None:
        """Data-Out PDUs for one R2T: `desired length` bytes from its buffer offset."""
        ttt, offset, wanted = r2t.u32(20), r2t.u32(40), r2t.u32(44)
        end = offset + wanted
        datasn = 0
        while offset < end:
            chunk = data[offset:min(end, offset + self.target_recv)]
            self.sock.sendall(pdu.data_out(lun, itt, ttt, self.exp_statsn, datasn, offset,
                                           chunk, final=offset + len(chunk) >= end))
            offset += len(chunk)
            datasn += 1

    def _check(self, got: pdu.Pdu, what: str) -> None:
        """Raise unless the command succeeded (UnitAttention for a unit attention)."""
        response = got.header[2] if got.opcode == pdu.SCSI_RESPONSE else 0
        status = got.header[3]
        if response == 0 and status == 0:
            return
        key = pdu.sense_key(got.data) if status == pdu.CHECK_CONDITION else None
        kind = UnitAttention if key == pdu.UNIT_ATTENTION else IscsiError
        raise kind(f"{what} on {self.target} failed: response {response:#x}, SCSI status "
                   f"{status:#x}" + (f", sense key {key:#x}" if key is not None else ""),
                   target=self.target)
