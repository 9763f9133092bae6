"""NFC framing, token bucket and resume planning: pure functions."""

from __future__ import annotations

import pytest

from vmknet.nfc import protocol as p
from vmknet.nfc.files import BLOCK
from vmknet.nfc.plan import TokenBucket, differing, jobs
from vmknet.nfc.protocol import Code, Flag, NfcError, Op


def test_frame_round_trip() -> None:
    frame = p.encode(Op.OPEN, 7, p.to_json({"datastore": "ds1", "path": "a"}), Flag.TEMPORARY)
    head, payload = p.decode(frame)
    assert (head.op, head.request_id, head.flags) == (Op.OPEN, 7, Flag.TEMPORARY)
    assert head.size == len(frame) and p.from_json(payload) == {"datastore": "ds1", "path": "a"}
    assert frame[:4] == (len(frame) - 4).to_bytes(4, "big")  # length after the length field


def test_bad_frames_are_refused() -> None:
    with pytest.raises(NfcError) as unknown:
        p.decode(p.HEADER.pack(8, 99, 0, 0, 1))
    assert unknown.value.code is Code.BAD_REQUEST
    with pytest.raises(NfcError):
        p.decode_header(p.HEADER.pack(p.MAX_PAYLOAD + 9, 1, 0, 0, 1))
    with pytest.raises(NfcError):
        p.decode(p.encode(Op.HELLO, 1, b"abc")[:-1])
    with pytest.raises(ValueError):
        p.header(Op.WRITE_RANGE, 1, p.MAX_PAYLOAD + 1)


def test_error_payload_round_trip() -> None:
    err = p.parse_error(p.error_payload(Code.ACCESS, "path escapes"))
    assert err.code is Code.ACCESS and err.message == "path escapes"


def test_jobs_of_a_sparse_file_cover_only_data() -> None:
    size = 8 * BLOCK
    ranges = [(BLOCK // 2, BLOCK), (5 * BLOCK, 4096)]  # straddles blocks 0/1; inside block 5
    todo = jobs(size, ranges)
    assert [j.index for j in todo] == [0, 1, 5]
    assert sum(j.data_bytes for j in todo) == BLOCK + 4096
    assert todo[0].extents == ((BLOCK // 2, BLOCK // 2),)
    assert not any(j.rewrite for j in todo)


def test_resume_plan_sends_only_missing_or_different_blocks() -> None:
    src = [b"a", b"b", b"c", b"d"]
    assert differing(src, [b"a", b"x", b"c"]) == [1, 3]
    assert differing(src, src) == []
    # A differing block without data is still rewritten (zeroed): the .part held junk there.
    again = jobs(4 * BLOCK, [(0, BLOCK)], [0, 2], rewrite=True)
    assert [(j.index, j.data_bytes, j.rewrite) for j in again] == [(0, BLOCK, True),
                                                                  (2, 0, True)]


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0
        self.slept = 0.0

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept += seconds
        self.now += seconds


def test_token_bucket_holds_the_rate() -> None:
    clock = FakeClock()
    bucket = TokenBucket(1_000_000, burst=100_000, clock=clock)
    for _ in range(50):
        bucket.consume(100_000)  # 5 MB at 1 MB/s
    assert 4.8 <= clock.now <= 5.0  # the first burst is free
    with pytest.raises(ValueError):
        TokenBucket(0)
