"""iSCSI PDUs (RFC 7143), the few an initiator needs: login, SCSI command, data, logout (pure).

Every PDU is a 48-byte basic header segment (BHS), optional additional
headers, and a data segment padded to 4 bytes. Digests are never negotiated
(HeaderDigest=None, DataDigest=None), so none are sent or expected.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

BHS = 48
IMMEDIATE = 0x40
FINAL = 0x80
# opcodes, initiator to target
NOP_OUT, SCSI_COMMAND, LOGIN, LOGOUT, DATA_OUT = 0x00, 0x01, 0x03, 0x06, 0x05
# opcodes, target to initiator
NOP_IN, SCSI_RESPONSE, LOGIN_RESPONSE, DATA_IN, LOGOUT_RESPONSE, R2T, REJECT = (
    0x20, 0x21, 0x23, 0x25, 0x26, 0x31, 0x3F)
OPERATIONAL, FULL_FEATURE = 1, 3  # login stages
READ_FLAG, WRITE_FLAG, SIMPLE = 0x40, 0x20, 0x01
STATUS_FLAG = 0x01  # Data-In carries the command's status
NO_TAG = 0xFFFFFFFF
READ_10, WRITE_10 = 0x28, 0x2A
CHECK_CONDITION = 0x02
UNIT_ATTENTION = 0x06


@dataclass(frozen=True, slots=True)
class Pdu:
    header: bytes  # the 48-byte BHS
    data: bytes  # the data segment, unpadded

    @property
    def opcode(self) -> int:
        return self.header[0] & 0x3F

    @property
    def flags(self) -> int:
        return self.header[1]

    def u32(self, offset: int) -> int:
        return int(struct.unpack_from(">I", self.header, offset)[0])


def pad(data: bytes) -> bytes:
    return data + b"\0" * (-len(data) % 4)


def encode(header: bytes, data: bytes = b"") -> bytes:
    """`header` (48 bytes, its length field filled in here) followed by the padded data."""
    if len(header) != BHS:
        raise ValueError(f"a BHS is {BHS} bytes, not {len(header)}")
    if len(data) >= 1 << 24:
        raise ValueError("a data segment is shorter than 16 MiB")
    out = bytearray(header)
    out[4] = 0  # no additional header segments
    out[5:8] = len(data).to_bytes(3, "big")
    return bytes(out) + pad(data)


def lengths(header: bytes) -> tuple[int, int]:
    """(bytes of additional headers, bytes of data) announced by a BHS (data unpadded)."""
    return header[4] * 4, int.from_bytes(header[5:8], "big")


def text_keys(keys: dict[str, str]) -> bytes:
    """key=value pairs, each ended by a NUL (RFC 7143 6.1)."""
    return b"".join(f"{k}={v}".encode() + b"\0" for k, v in keys.items())


def parse_keys(data: bytes) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in data.split(b"\0"):
        if b"=" in item:
            key, _, value = item.decode(errors="replace").partition("=")
            out[key] = value
    return out


def login(isid: bytes, itt: int, cmdsn: int, exp_statsn: int, keys: dict[str, str],
          csg: int = OPERATIONAL, nsg: int = FULL_FEATURE, transit: bool = True) -> bytes:
    if len(isid) != 6:
        raise ValueError("an ISID is 6 bytes")
    flags = (FINAL if transit else 0) | (csg << 2) | (nsg if transit else 0)
    header = struct.pack(">BBBBB3s6sHIHHII16x", IMMEDIATE | LOGIN, flags, 0, 0, 0, b"",
                         isid, 0, itt, 0, 0, cmdsn, exp_statsn)
    return encode(header, text_keys(keys))


def lun_field(lun: int) -> bytes:
    """SAM peripheral device addressing for LUNs 0-255 (what tgt reports)."""
    if not 0 <= lun <= 255:
        raise ValueError(f"LUN {lun}: 0-255 only")
    return bytes([0, lun]) + b"\0" * 6


def cdb_10(opcode: int, lba: int, blocks: int) -> bytes:
    """READ(10) or WRITE(10), padded to the 16 bytes of the BHS's CDB field."""
    if not 0 <= lba < 1 << 32 or not 0 < blocks < 1 << 16:
        raise ValueError(f"LBA {lba} / {blocks} blocks do not fit a 10-byte CDB")
    return struct.pack(">BBIBHB6x", opcode, 0, lba, 0, blocks, 0)


def scsi_command(lun: int, itt: int, cmdsn: int, exp_statsn: int, cdb: bytes, length: int,
                 *, read: bool, write: bool, immediate_data: bytes = b"") -> bytes:
    flags = FINAL | SIMPLE | (READ_FLAG if read else 0) | (WRITE_FLAG if write else 0)
    header = struct.pack(">BBH4x8sIIII16s", SCSI_COMMAND, flags, 0, lun_field(lun), itt,
                         length, cmdsn, exp_statsn, cdb)
    return encode(header, immediate_data)


def data_out(lun: int, itt: int, ttt: int, exp_statsn: int, datasn: int, offset: int,
             data: bytes, final: bool) -> bytes:
    # opcode, flags, LUN 8-15, ITT 16, TTT 20, reserved 24, ExpStatSN 28, reserved 32,
    # DataSN 36, buffer offset 40, reserved 44.
    header = struct.pack(">BB2x4x8sII4xI4xII4x", DATA_OUT, FINAL if final else 0,
                         lun_field(lun), itt, ttt, exp_statsn, datasn, offset)
    return encode(header, data)


def nop_out(itt: int, ttt: int, cmdsn: int, exp_statsn: int) -> bytes:
    """The answer to a target's NOP-In ping (immediate, so it takes no CmdSN)."""
    header = struct.pack(">BB2x4x8xIIII16x", IMMEDIATE | NOP_OUT, FINAL, itt, ttt, cmdsn,
                         exp_statsn)
    return encode(header)


def logout(itt: int, cmdsn: int, exp_statsn: int) -> bytes:
    header = struct.pack(">BB2x4x8xIHHII16x", IMMEDIATE | LOGOUT, FINAL, itt, 0, 0, cmdsn,
                         exp_statsn)
    return encode(header)


def sense_key(data: bytes) -> int | None:
    """The sense key of a SCSI Response's sense data (2-byte length, then the sense bytes)."""
    if len(data) < 2:
        return None
    length = int.from_bytes(data[:2], "big")
    sense = data[2:2 + length]
    if len(sense) < 3:
        return None
    code = sense[0] & 0x7F
    if code in (0x70, 0x71):  # fixed format
        return sense[2] & 0x0F
    if code in (0x72, 0x73):  # descriptor format
        return sense[1] & 0x0F
    return None
