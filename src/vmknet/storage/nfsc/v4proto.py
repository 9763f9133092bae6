"""NFS 4.1 (RFC 8881) compounds as XDR: the operations vmknet's client sends, and their results.

A compound is a list of operations; the reply carries one result per
operation executed, up to and including the first that failed. `Op` pairs
an operation's arguments with the parser of its result body, so a compound
is encoded and decoded in one pass.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .errors import NfsExists, NfsNotFound, NfsProtocolError, NfsStatusError
from .xdr import Packer, Unpacker

NFS4_PROG, NFS4_VERS, COMPOUND = 100003, 4, 1
MINOR = 1
FHSIZE = 128
OPAQUE_LIMIT = 1024
SESSIONID = 16

ACCESS, CLOSE, COMMIT, CREATE, DELEGRETURN, GETATTR, GETFH = 3, 4, 5, 6, 8, 9, 10
LOOKUP, OPEN, PUTFH, PUTROOTFH, READ, READDIR, REMOVE = 15, 18, 22, 24, 25, 26, 28
SETATTR, WRITE, BIND_CONN_TO_SESSION, EXCHANGE_ID, CREATE_SESSION = 34, 38, 41, 42, 43
DESTROY_SESSION, SEQUENCE, DESTROY_CLIENTID, RECLAIM_COMPLETE = 44, 53, 57, 58
OP_NAMES = {v: k for k, v in dict(
    ACCESS=3, CLOSE=4, COMMIT=5, CREATE=6, DELEGRETURN=8, GETATTR=9, GETFH=10, LOOKUP=15,
    OPEN=18, PUTFH=22, PUTROOTFH=24, READ=25, READDIR=26, REMOVE=28, SETATTR=34, WRITE=38,
    BIND_CONN_TO_SESSION=41, EXCHANGE_ID=42, CREATE_SESSION=43, DESTROY_SESSION=44,
    SEQUENCE=53, DESTROY_CLIENTID=57, RECLAIM_COMPLETE=58).items()}

EXCHGID4_FLAG_USE_NON_PNFS = 0x00010000
SP4_NONE = 0
CDFC4_FORE = 1
OPEN4_SHARE_ACCESS_BOTH = 3
OPEN4_SHARE_ACCESS_WANT_NO_DELEG = 0x0400
OPEN4_NOCREATE, OPEN4_CREATE = 0, 1
UNCHECKED4 = 0
CLAIM_NULL, CLAIM_FH = 0, 4
OPEN_DELEGATE_NONE, OPEN_DELEGATE_READ, OPEN_DELEGATE_WRITE, OPEN_DELEGATE_NONE_EXT = 0, 1, 2, 3
UNSTABLE4, FILE_SYNC4 = 0, 2
NF4REG, NF4DIR = 1, 2

A_TYPE, A_SIZE, A_LEASE_TIME, A_FILEID = 1, 4, 10, 20
A_FILES_AVAIL, A_FILES_FREE, A_FILES_TOTAL = 21, 22, 23
A_MODE, A_SPACE_AVAIL, A_SPACE_FREE, A_SPACE_TOTAL = 33, 42, 43, 44
# The value's XDR size of each attribute vmknet asks for (all fixed-size).
_ATTR_SIZE = {A_TYPE: 4, A_SIZE: 8, A_LEASE_TIME: 4, A_FILEID: 8, A_FILES_AVAIL: 8, A_FILES_FREE: 8,
              A_FILES_TOTAL: 8, A_MODE: 4, A_SPACE_AVAIL: 8, A_SPACE_FREE: 8, A_SPACE_TOTAL: 8}

NFS4_STATUS = {
    0: "NFS4_OK", 1: "NFS4ERR_PERM", 2: "NFS4ERR_NOENT", 5: "NFS4ERR_IO", 13: "NFS4ERR_ACCESS",
    17: "NFS4ERR_EXIST", 18: "NFS4ERR_XDEV", 20: "NFS4ERR_NOTDIR", 21: "NFS4ERR_ISDIR",
    22: "NFS4ERR_INVAL", 27: "NFS4ERR_FBIG", 28: "NFS4ERR_NOSPC", 30: "NFS4ERR_ROFS",
    63: "NFS4ERR_NAMETOOLONG", 66: "NFS4ERR_NOTEMPTY", 70: "NFS4ERR_STALE",
    10001: "NFS4ERR_BADHANDLE", 10004: "NFS4ERR_NOTSUPP", 10006: "NFS4ERR_SERVERFAULT",
    10008: "NFS4ERR_DELAY", 10011: "NFS4ERR_EXPIRED", 10013: "NFS4ERR_GRACE",
    10020: "NFS4ERR_NOFILEHANDLE", 10021: "NFS4ERR_MINOR_VERS_MISMATCH",
    10022: "NFS4ERR_STALE_CLIENTID", 10023: "NFS4ERR_STALE_STATEID",
    10024: "NFS4ERR_OLD_STATEID", 10025: "NFS4ERR_BAD_STATEID", 10026: "NFS4ERR_BAD_SEQID",
    10038: "NFS4ERR_OP_ILLEGAL", 10041: "NFS4ERR_RESOURCE", 10044: "NFS4ERR_OP_NOT_IN_SESSION",
    10052: "NFS4ERR_BADSESSION", 10053: "NFS4ERR_BADSLOT", 10054: "NFS4ERR_COMPLETE_ALREADY",
    10055: "NFS4ERR_CONN_NOT_BOUND_TO_SESSION", 10057: "NFS4ERR_DEADSESSION",
    10063: "NFS4ERR_SEQ_MISORDERED", 10064: "NFS4ERR_SEQUENCE_POS",
    10065: "NFS4ERR_REQ_TOO_BIG", 10066: "NFS4ERR_REP_TOO_BIG",
    10067: "NFS4ERR_REP_TOO_BIG_TO_CACHE", 10068: "NFS4ERR_RETRY_UNCACHED_REP",
    10069: "NFS4ERR_UNSAFE_COMPROMISE", 10070: "NFS4ERR_TOO_MANY_OPS",
    10071: "NFS4ERR_OP_NOT_IN_SESSION", 10077: "NFS4ERR_NOT_ONLY_OP",
    10078: "NFS4ERR_WRONG_CRED", 10079: "NFS4ERR_WRONG_TYPE", 10081: "NFS4ERR_DELEG_REVOKED"}
# The session or client ID is gone (the server restarted, or the lease ran out): start again.
LOST_SESSION = {10011, 10022, 10052, 10057}
# An open's stateid is gone (with the session it was opened in): open the file again.
LOST_STATE = {10023, 10025}
COMPLETE_ALREADY = 10054
RETRY_UNCACHED = 10068
DELAY = 10008


def status_error(what: str, status: int) -> NfsStatusError:
    name = NFS4_STATUS.get(status, f"status {status}")
    kind = NfsNotFound if status == 2 else NfsExists if status == 17 else NfsStatusError
    return kind(f"{what}: {name}", status=status, name=name)


@dataclass(frozen=True, slots=True)
class Op:
    """One operation: its code, its encoded arguments, the parser of its result body."""

    code: int
    args: bytes = b""
    parse: Callable[[Unpacker], Any] | None = None


def compound_args(ops: list[Op], tag: str = "") -> bytes:
    p = Packer().string(tag).u32(MINOR).u32(len(ops))
    for op in ops:
        p.u32(op.code).raw(op.args)
    return p.data()


def compound_results(u: Unpacker, ops: list[Op], what: str) -> list[Any]:
    """Each operation's parsed result; the first failure is raised, naming the operation."""
    status = u.u32()
    u.string(OPAQUE_LIMIT)  # tag
    count = u.u32()
    if count > len(ops) or (status == 0 and count != len(ops)):
        raise NfsProtocolError(f"{what}: {count} results for {len(ops)} operations")
    out: list[Any] = []
    for op in ops[:count]:
        code = u.u32()
        if code != op.code:
            raise NfsProtocolError(f"{what}: result of operation {code} where "
                                   f"{OP_NAMES.get(op.code, op.code)} was sent")
        result = u.u32()
        if result != 0:
            raise status_error(f"{what} ({OP_NAMES.get(code, code)})", result)
        out.append(op.parse(u) if op.parse is not None else None)
    if status != 0:
        raise status_error(what, status)
    return out


# ------------------------------------------------------------------ shared pieces

@dataclass(frozen=True, slots=True)
class Stateid:
    seqid: int
    other: bytes  # 12 bytes

    def pack(self, p: Packer) -> Packer:
        return p.u32(self.seqid).fixed(self.other, 12)


ANONYMOUS = Stateid(0, b"\0" * 12)


def stateid(u: Unpacker) -> Stateid:
    return Stateid(u.u32(), u.fixed(12))


def bitmap(bits: list[int]) -> list[int]:
    words = [0] * (max(bits) // 32 + 1 if bits else 0)
    for bit in bits:
        words[bit // 32] |= 1 << (bit % 32)
    return words


def pack_bitmap(p: Packer, bits: list[int]) -> Packer:
    words = bitmap(bits)
    p.u32(len(words))
    for w in words:
        p.u32(w)
    return p


def pack_fattr(p: Packer, values: dict[int, int]) -> Packer:
    """fattr4 of fixed-size attributes (mode, size): bitmap, then the values by bit order."""
    pack_pieces = Packer()
    for bit in sorted(values):
        (pack_pieces.u32 if _ATTR_SIZE[bit] == 4 else pack_pieces.u64)(values[bit])
    return pack_bitmap(p, sorted(values)).opaque(pack_pieces.data())


def fattr(u: Unpacker) -> dict[int, int]:
    """A fattr4 holding only attributes of the fixed sizes above (what vmknet asks for)."""
    words = u.array(lambda x: x.u32(), 8)
    body = Unpacker(u.opaque(65536))
    out: dict[int, int] = {}
    for w, word in enumerate(words):
        for b in range(32):
            if word & (1 << b):
                bit = w * 32 + b
                size = _ATTR_SIZE.get(bit)
                if size is None:
                    raise NfsProtocolError(f"attribute {bit} was not asked for")
                out[bit] = body.u32() if size == 4 else body.u64()
    return out


def change_info(u: Unpacker) -> None:
    u.boolean(), u.u64(), u.u64()


def fh(u: Unpacker) -> bytes:
    handle = u.opaque(FHSIZE)
    if not handle:
        raise NfsProtocolError("an empty file handle")
    return handle


# ------------------------------------------------------------------ session setup

@dataclass(frozen=True, slots=True)
class ExchangeId:
    clientid: int
    sequenceid: int
    flags: int
    owner_minor: int
    owner_major: bytes
    scope: bytes


def exchange_id(verifier: bytes, owner: bytes) -> Op:
    p = Packer().fixed(verifier, 8).opaque(owner).u32(EXCHGID4_FLAG_USE_NON_PNFS)
    p.u32(SP4_NONE).u32(0)  # no state protection, no implementation id
    return Op(EXCHANGE_ID, p.data(), _exchange_id_result)


def _exchange_id_result(u: Unpacker) -> ExchangeId:
    clientid, sequenceid, flags = u.u64(), u.u32(), u.u32()
    how = u.u32()
    if how != SP4_NONE:
        raise NfsProtocolError(f"state protection {how} where none was asked")
    minor, major = u.u64(), u.opaque(OPAQUE_LIMIT)
    scope = u.opaque(OPAQUE_LIMIT)
    u.array(_impl_id, 1)
    return ExchangeId(clientid, sequenceid, flags, minor, major, scope)


def _impl_id(u: Unpacker) -> None:
    u.string(OPAQUE_LIMIT), u.string(OPAQUE_LIMIT), u.u64(), u.u32()


@dataclass(frozen=True, slots=True)
class Channel:
    maxrequest: int
    maxresponse: int
    maxops: int
    maxrequests: int


def _channel(p: Packer, request: int, response: int, ops: int, requests: int) -> Packer:
    return p.u32(0).u32(request).u32(response).u32(4096).u32(ops).u32(requests).u32(0)


def _channel_result(u: Unpacker) -> Channel:
    u.u32()  # header pad
    request, response = u.u32(), u.u32()
    u.u32()  # cached response size
    ops, requests = u.u32(), u.u32()
    u.array(lambda x: x.u32(), 1)  # rdma ird
    return Channel(request, response, ops, requests)


@dataclass(frozen=True, slots=True)
class Session:
    sessionid: bytes
    fore: Channel


def create_session(clientid: int, sequenceid: int, maxio: int, slots: int) -> Op:
    p = Packer().u64(clientid).u32(sequenceid).u32(0)  # flags: no back channel, no persist
    _channel(p, maxio + 8192, maxio + 8192, 16, slots)
    _channel(p, 4096, 4096, 2, 1)
    p.u32(0x40000000)  # callback program: none is served, one must be named
    p.u32(1).u32(0)  # callback security: AUTH_NONE
    return Op(CREATE_SESSION, p.data(), _create_session_result)


def _create_session_result(u: Unpacker) -> Session:
    sessionid = u.fixed(SESSIONID)
    u.u32(), u.u32()  # sequence, flags
    fore = _channel_result(u)
    _channel_result(u)
    return Session(sessionid, fore)


def sequence(sessionid: bytes, seqid: int, slot: int, highest: int) -> Op:
    p = Packer().fixed(sessionid, SESSIONID).u32(seqid).u32(slot).u32(highest).boolean(False)
    return Op(SEQUENCE, p.data(), _sequence_result)


def _sequence_result(u: Unpacker) -> int:
    u.fixed(SESSIONID)
    u.u32(), u.u32(), u.u32()  # sequence, slot, highest slot
    target = u.u32()
    u.u32()  # status flags
    return target


def bind_conn(sessionid: bytes) -> Op:
    p = Packer().fixed(sessionid, SESSIONID).u32(CDFC4_FORE).boolean(False)
    return Op(BIND_CONN_TO_SESSION, p.data(), _bind_conn_result)


def _bind_conn_result(u: Unpacker) -> int:
    u.fixed(SESSIONID)
    direction = u.u32()
    u.boolean()
    return direction


def reclaim_complete() -> Op:
    return Op(RECLAIM_COMPLETE, Packer().boolean(False).data())


def destroy_session(sessionid: bytes) -> Op:
    return Op(DESTROY_SESSION, Packer().fixed(sessionid, SESSIONID).data())


def destroy_clientid(clientid: int) -> Op:
    return Op(DESTROY_CLIENTID, Packer().u64(clientid).data())


# ------------------------------------------------------------------ files

def putrootfh() -> Op:
    return Op(PUTROOTFH)


def putfh(handle: bytes) -> Op:
    return Op(PUTFH, Packer().opaque(handle).data())


def lookup(name: str) -> Op:
    return Op(LOOKUP, Packer().string(name).data())


def getfh() -> Op:
    return Op(GETFH, b"", fh)


def getattr_(bits: list[int]) -> Op:
    return Op(GETATTR, pack_bitmap(Packer(), bits).data(), fattr)


@dataclass(frozen=True, slots=True)
class Opened:
    stateid: Stateid
    delegation: Stateid | None  # to be returned at close (we ask for none)


def open_(clientid: int, owner: bytes, name: str | None, create: bool,
          size: int | None) -> Op:
    """OPEN for read and write: by name in the current directory, or (name None) the
    current file itself (CLAIM_FH, when a file is opened again after a lost session)."""
    p = Packer().u32(0).u32(OPEN4_SHARE_ACCESS_BOTH | OPEN4_SHARE_ACCESS_WANT_NO_DELEG).u32(0)
    p.u64(clientid).opaque(owner)
    if create:
        attrs = {A_MODE: 0o644} | ({A_SIZE: size} if size is not None else {})
        pack_fattr(p.u32(OPEN4_CREATE).u32(UNCHECKED4), attrs)
    else:
        p.u32(OPEN4_NOCREATE)
    if name is None:
        p.u32(CLAIM_FH)
    else:
        p.u32(CLAIM_NULL).string(name)
    return Op(OPEN, p.data(), _open_result)


def _ace(u: Unpacker) -> None:
    u.u32(), u.u32(), u.u32(), u.string(OPAQUE_LIMIT)


def _open_result(u: Unpacker) -> Opened:
    sid = stateid(u)
    change_info(u)
    u.u32()  # rflags
    u.array(lambda x: x.u32(), 8)  # attrset
    kind = u.u32()
    delegation = None
    if kind in (OPEN_DELEGATE_READ, OPEN_DELEGATE_WRITE):
        delegation = stateid(u)
        u.boolean()
        if kind == OPEN_DELEGATE_WRITE:
            if u.u32() == 1:
                u.u64()
            else:
                u.u32(), u.u32()
        _ace(u)
    elif kind == OPEN_DELEGATE_NONE_EXT:
        if u.u32() in (1, 2):
            u.boolean()
    elif kind != OPEN_DELEGATE_NONE:
        raise NfsProtocolError(f"delegation type {kind}")
    return Opened(sid, delegation)


def close(sid: Stateid) -> Op:
    return Op(CLOSE, sid.pack(Packer().u32(0)).data(), stateid)


def delegreturn(sid: Stateid) -> Op:
    return Op(DELEGRETURN, sid.pack(Packer()).data())


def read(sid: Stateid, offset: int, count: int) -> Op:
    def parse(u: Unpacker) -> tuple[bool, bytes]:
        eof = u.boolean()
        return eof, bytes(u.opaque_view(count))
    return Op(READ, sid.pack(Packer()).u64(offset).u32(count).data(), parse)


def write(sid: Stateid, offset: int, stable: int, data: bytes) -> Op:
    def parse(u: Unpacker) -> tuple[int, bytes]:
        count = u.u32()
        u.u32()  # committed
        return count, u.fixed(8)
    return Op(WRITE, sid.pack(Packer()).u64(offset).u32(stable).opaque(data).data(), parse)


def commit() -> Op:
    return Op(COMMIT, Packer().u64(0).u32(0).data(), lambda u: u.fixed(8))


def setattr_size(sid: Stateid, size: int) -> Op:
    p = pack_fattr(sid.pack(Packer()), {A_SIZE: size})
    return Op(SETATTR, p.data(), lambda u: u.array(lambda x: x.u32(), 8))


def remove(name: str) -> Op:
    return Op(REMOVE, Packer().string(name).data(), change_info)


def mkdir(name: str) -> Op:
    p = pack_fattr(Packer().u32(NF4DIR).string(name), {A_MODE: 0o755})

    def parse(u: Unpacker) -> None:
        change_info(u)
        u.array(lambda x: x.u32(), 8)
    return Op(CREATE, p.data(), parse)


@dataclass(frozen=True, slots=True)
class Listing:
    names: list[tuple[str, int]]  # (name, cookie)
    verifier: bytes
    eof: bool


def readdir(cookie: int, verifier: bytes) -> Op:
    p = pack_bitmap(Packer().u64(cookie).fixed(verifier, 8).u32(8192).u32(65536), [A_TYPE])

    def parse(u: Unpacker) -> Listing:
        verf = u.fixed(8)
        names: list[tuple[str, int]] = []
        while u.boolean():
            entry_cookie = u.u64()
            names.append((u.string(255), entry_cookie))
            fattr(u)
            if len(names) > 1 << 17:
                raise NfsProtocolError("more than 131072 names in one READDIR reply")
        return Listing(names, verf, u.boolean())
    return Op(READDIR, p.data(), parse)
