"""iSCSI PDUs of vmknet's initiator: byte layout (RFC 7143), keys, sense data (pure)."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vmknet.storage import pdu

ISID = bytes([0x00, 0x02, 0x3D, 1, 2, 3])


def _u32(raw: bytes, offset: int) -> int:
    return int(struct.unpack_from(">I", raw, offset)[0])


def test_a_login_request_goes_straight_to_full_feature_phase() -> None:
    raw = pdu.login(ISID, itt=7, cmdsn=0, exp_statsn=0,
                    keys={"InitiatorName": "iqn.1998-01.com.vmware:esx01-1",
                          "SessionType": "Normal"})
    assert raw[0] == 0x43  # immediate | login
    assert raw[1] == 0x80 | (1 << 2) | 3  # transit, CSG operational, NSG full feature
    assert raw[8:14] == ISID and _u32(raw, 16) == 7
    ahs, length = pdu.lengths(raw[:48])
    assert ahs == 0 and len(raw) == 48 + length + (-length % 4)
    assert pdu.parse_keys(raw[48:48 + length]) == {
        "InitiatorName": "iqn.1998-01.com.vmware:esx01-1", "SessionType": "Normal"}


def test_a_write_command_carries_lun_lengths_and_a_write_10_cdb() -> None:
    raw = pdu.scsi_command(2, itt=9, cmdsn=5, exp_statsn=3,
                           cdb=pdu.cdb_10(pdu.WRITE_10, 100, 8), length=4096, read=False,
                           write=True, immediate_data=b"x" * 512)
    assert raw[0] == pdu.SCSI_COMMAND and raw[1] == 0x80 | 0x20 | 0x01
    assert raw[8:16] == bytes([0, 2, 0, 0, 0, 0, 0, 0])
    assert (_u32(raw, 16), _u32(raw, 20), _u32(raw, 24), _u32(raw, 28)) == (9, 4096, 5, 3)
    assert raw[32] == 0x2A and _u32(raw, 34) == 100 and raw[39:41] == (8).to_bytes(2, "big")
    assert pdu.lengths(raw[:48]) == (0, 512) and raw[48:] == b"x" * 512


def test_data_out_answers_an_r2t_at_its_offset() -> None:
    raw = pdu.data_out(1, itt=4, ttt=0x55, exp_statsn=6, datasn=2, offset=8192,
                       data=b"y" * 100, final=True)
    assert raw[0] == pdu.DATA_OUT and raw[1] == 0x80
    assert (_u32(raw, 16), _u32(raw, 20), _u32(raw, 28), _u32(raw, 36), _u32(raw, 40)) == (
        4, 0x55, 6, 2, 8192)
    assert len(raw) == 48 + 100 + 0 and pdu.lengths(raw[:48]) == (0, 100)


def test_nop_out_and_logout_are_immediate() -> None:
    nop = pdu.nop_out(pdu.NO_TAG, 0x99, 3, 4)
    assert nop[0] == 0x40 and _u32(nop, 16) == pdu.NO_TAG and _u32(nop, 20) == 0x99
    bye = pdu.logout(12, 3, 4)
    assert bye[0] == 0x46 and bye[1] == 0x80 and _u32(bye, 16) == 12 and len(bye) == 48


@given(st.dictionaries(st.from_regex(r"[A-Za-z][A-Za-z0-9]{0,20}", fullmatch=True),
                       st.from_regex(r"[A-Za-z0-9.:,_-]{0,40}", fullmatch=True), max_size=8))
def test_text_keys_read_back(keys: dict[str, str]) -> None:
    assert pdu.parse_keys(pdu.pad(pdu.text_keys(keys))) == keys


@given(st.binary(max_size=3000))
def test_encode_pads_to_four_and_announces_the_unpadded_length(data: bytes) -> None:
    raw = pdu.encode(bytes(48), data)
    assert len(raw) % 4 == 0 and pdu.lengths(raw[:48]) == (0, len(data))
    assert raw[48:48 + len(data)] == data


def test_bad_sizes_are_refused() -> None:
    with pytest.raises(ValueError):
        pdu.encode(bytes(47))
    with pytest.raises(ValueError):
        pdu.lun_field(256)
    with pytest.raises(ValueError):
        pdu.cdb_10(pdu.READ_10, 1 << 32, 1)
    with pytest.raises(ValueError):
        pdu.cdb_10(pdu.READ_10, 0, 0)
    with pytest.raises(ValueError):
        pdu.login(b"short", 1, 0, 0, {})


def test_sense_keys_fixed_and_descriptor_format() -> None:
    fixed = bytes([0x70, 0, 0x06]) + bytes(15)  # UNIT ATTENTION
    assert pdu.sense_key(len(fixed).to_bytes(2, "big") + fixed) == pdu.UNIT_ATTENTION
    descriptor = bytes([0x72, 0x05, 0x24, 0])  # ILLEGAL REQUEST
    assert pdu.sense_key(len(descriptor).to_bytes(2, "big") + descriptor) == 0x05
    assert pdu.sense_key(b"") is None and pdu.sense_key(b"\x00\x01\x70") is None


@given(st.binary(max_size=64))
def test_any_sense_data_gives_a_key_or_none(data: bytes) -> None:
    key = pdu.sense_key(data)
    assert key is None or 0 <= key <= 15
