"""NFS 4.1 compounds of vmknet's client (pure): encoding, results, hostile replies."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vmknet.storage.nfsc import v4proto as v4
from vmknet.storage.nfsc.errors import NfsNotFound, NfsProtocolError, NfsStatusError
from vmknet.storage.nfsc.xdr import Packer, Unpacker

SID = b"s" * 16


def _results(status: int, *ops: tuple[int, int, bytes]) -> Unpacker:
    p = Packer().u32(status).string("").u32(len(ops))
    for code, result, body in ops:
        p.u32(code).u32(result).raw(body)
    return Unpacker(p.data())


def _sequence_body() -> bytes:
    return Packer().fixed(SID, 16).u32(1).u32(0).u32(15).u32(15).u32(0).data()


def test_a_compound_carries_minor_version_1_and_its_operations_in_order() -> None:
    ops = [v4.sequence(SID, 7, 2, 15), v4.putrootfh(), v4.lookup("vols"), v4.getfh()]
    u = Unpacker(v4.compound_args(ops, "t"))
    assert (u.string(10), u.u32(), u.u32()) == ("t", 1, 4)
    assert u.u32() == v4.SEQUENCE and u.fixed(16) == SID
    assert (u.u32(), u.u32(), u.u32(), u.boolean()) == (7, 2, 15, False)
    assert u.u32() == v4.PUTROOTFH
    assert (u.u32(), u.string(10)) == (v4.LOOKUP, "vols")
    assert u.u32() == v4.GETFH
    u.done()


def test_results_are_parsed_per_operation() -> None:
    fh = Packer().opaque(b"H" * 40).data()
    ops = [v4.sequence(SID, 1, 0, 0), v4.putrootfh(), v4.getfh()]
    got = v4.compound_results(_results(0, (v4.SEQUENCE, 0, _sequence_body()),
                                       (v4.PUTROOTFH, 0, b""), (v4.GETFH, 0, fh)), ops, "x")
    assert got == [15, None, b"H" * 40]


def test_the_failing_operation_is_named_and_maps_to_the_usual_code() -> None:
    ops = [v4.sequence(SID, 1, 0, 0), v4.putrootfh(), v4.lookup("nope"), v4.getfh()]
    with pytest.raises(NfsNotFound, match=r"OPEN x \(LOOKUP\): NFS4ERR_NOENT") as caught:
        v4.compound_results(_results(2, (v4.SEQUENCE, 0, _sequence_body()),
                                     (v4.PUTROOTFH, 0, b""), (v4.LOOKUP, 2, b"")), ops, "OPEN x")
    assert caught.value.code == "NotFound"
    with pytest.raises(NfsStatusError, match="NFS4ERR_BADSESSION") as lost:
        v4.compound_results(_results(10052, (v4.SEQUENCE, 10052, b"")), ops, "x")
    assert lost.value.status in v4.LOST_SESSION


def test_hostile_compound_replies_are_protocol_errors() -> None:
    ops = [v4.putrootfh()]
    with pytest.raises(NfsProtocolError, match="result of operation 9"):
        v4.compound_results(_results(0, (v4.GETATTR, 0, b"")), ops, "x")
    with pytest.raises(NfsProtocolError, match="2 results for 1"):
        v4.compound_results(_results(0, (v4.PUTROOTFH, 0, b""), (v4.GETFH, 0, b"")), ops, "x")
    with pytest.raises(NfsProtocolError, match="0 results for 1"):
        v4.compound_results(_results(0), ops, "x")  # OK, yet nothing executed
    with pytest.raises(NfsProtocolError, match="exceeds 128"):
        v4.compound_results(_results(0, (v4.GETFH, 0, Packer().u32(5000).data())),
                            [v4.getfh()], "x")  # a file handle of 5000 bytes


def test_attributes_round_trip_and_unasked_ones_are_refused() -> None:
    raw = v4.pack_fattr(Packer(), {v4.A_SIZE: 1 << 40, v4.A_MODE: 0o644}).data()
    assert v4.fattr(Unpacker(raw)) == {v4.A_SIZE: 1 << 40, v4.A_MODE: 0o644}
    owner = Packer().u32(2).u32(0).u32(1 << (36 - 32)).opaque(Packer().string("root").data())
    with pytest.raises(NfsProtocolError, match="attribute 36"):
        v4.fattr(Unpacker(owner.data()))  # a variable-size attribute nobody asked for


@given(st.dictionaries(st.sampled_from([v4.A_TYPE, v4.A_SIZE, v4.A_LEASE_TIME, v4.A_MODE,
                                        v4.A_SPACE_AVAIL, v4.A_SPACE_TOTAL, v4.A_FILES_FREE]),
                       st.integers(0, 2**32 - 1)))
def test_fattr_round_trips(values: dict[int, int]) -> None:
    assert v4.fattr(Unpacker(v4.pack_fattr(Packer(), values).data())) == values


def test_an_open_result_with_a_delegation_is_parsed_for_its_stateid() -> None:
    body = (Packer().u32(1).fixed(b"o" * 12, 12).boolean(True).u64(1).u64(2).u32(0).u32(0)
            .u32(v4.OPEN_DELEGATE_WRITE).u32(3).fixed(b"d" * 12, 12).boolean(False)
            .u32(1).u64(1 << 30).u32(0).u32(0).u32(0).string("EVERYONE@").data())
    opened = v4.open_(1, b"owner", "f", True, None).parse
    assert opened is not None
    got = opened(Unpacker(body))
    assert got.stateid == v4.Stateid(1, b"o" * 12)
    assert got.delegation == v4.Stateid(3, b"d" * 12)


def test_exchange_id_results_carry_the_server_owner() -> None:
    body = (Packer().u64(77).u32(1).u32(0x10001).u32(v4.SP4_NONE).u64(0).opaque(b"vm")
            .opaque(b"scope").u32(0).data())
    parse = v4.exchange_id(b"v" * 8, b"owner").parse
    assert parse is not None
    got = parse(Unpacker(body))
    assert (got.clientid, got.owner_major, got.owner_minor, got.scope) == (77, b"vm", 0, b"scope")
    other = (Packer().u64(77).u32(1).u32(0).u32(1).data())
    with pytest.raises(NfsProtocolError, match="state protection 1"):
        parse(Unpacker(other))
