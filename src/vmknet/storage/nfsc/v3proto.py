"""The procedures of NFS 3 (RFC 1813), MOUNT 3 and the portmapper (RFC 1833), as XDR.

Only what vmknet's client uses. Results are parsed into small tuples and
dataclasses; every variable length is checked by the unpacker.
"""

from __future__ import annotations

from dataclasses import dataclass

from .errors import NfsExists, NfsNotFound, NfsProtocolError, NfsStatusError
from .xdr import Packer, Unpacker

PMAP_PROG, PMAP_VERS, PMAP_GETPORT = 100000, 2, 3
MOUNT_PROG, MOUNT_VERS, MOUNTPROC_MNT, MOUNTPROC_UMNT = 100005, 3, 1, 3
NFS_PROG, NFS_VERS = 100003, 3
IPPROTO_TCP = 6

NULL, GETATTR, SETATTR, LOOKUP = 0, 1, 2, 3
READ, WRITE, CREATE, MKDIR = 6, 7, 8, 9
REMOVE, RMDIR, READDIR, READDIRPLUS, FSSTAT, FSINFO, COMMIT = 12, 13, 16, 17, 18, 19, 21

UNSTABLE, DATA_SYNC, FILE_SYNC = 0, 1, 2
UNCHECKED, GUARDED, EXCLUSIVE = 0, 1, 2
NF3REG, NF3DIR = 1, 2

FHSIZE = 64
MAX_NAME = 255
MAX_PATH = 1024

NFS3_STATUS = {
    0: "NFS3_OK", 1: "NFS3ERR_PERM", 2: "NFS3ERR_NOENT", 5: "NFS3ERR_IO", 6: "NFS3ERR_NXIO",
    13: "NFS3ERR_ACCES", 17: "NFS3ERR_EXIST", 18: "NFS3ERR_XDEV", 19: "NFS3ERR_NODEV",
    20: "NFS3ERR_NOTDIR", 21: "NFS3ERR_ISDIR", 22: "NFS3ERR_INVAL", 27: "NFS3ERR_FBIG",
    28: "NFS3ERR_NOSPC", 30: "NFS3ERR_ROFS", 31: "NFS3ERR_MLINK", 63: "NFS3ERR_NAMETOOLONG",
    66: "NFS3ERR_NOTEMPTY", 69: "NFS3ERR_DQUOT", 70: "NFS3ERR_STALE", 71: "NFS3ERR_REMOTE",
    10001: "NFS3ERR_BADHANDLE", 10002: "NFS3ERR_NOT_SYNC", 10003: "NFS3ERR_BAD_COOKIE",
    10004: "NFS3ERR_NOTSUPP", 10005: "NFS3ERR_TOOSMALL", 10006: "NFS3ERR_SERVERFAULT",
    10007: "NFS3ERR_BADTYPE", 10008: "NFS3ERR_JUKEBOX"}
MOUNT_STATUS = {
    0: "MNT3_OK", 1: "MNT3ERR_PERM", 2: "MNT3ERR_NOENT", 5: "MNT3ERR_IO", 13: "MNT3ERR_ACCES",
    20: "MNT3ERR_NOTDIR", 22: "MNT3ERR_INVAL", 63: "MNT3ERR_NAMETOOLONG",
    10004: "MNT3ERR_NOTSUPP", 10006: "MNT3ERR_SERVERFAULT"}


def status_error(what: str, status: int, table: dict[int, str] | None = None) -> NfsStatusError:
    name = (table or NFS3_STATUS).get(status, f"status {status}")
    kind = NfsNotFound if status == 2 else NfsExists if status == 17 else NfsStatusError
    return kind(f"{what}: {name}", status=status, name=name)


def ok(u: Unpacker, what: str) -> None:
    """Read the status at the head of a result: NFS3_OK, or the error it names is raised.

    The rest of a failed result (post-op attributes) is not needed: the record is dropped.
    """
    status = u.u32()
    if status != 0:
        raise status_error(what, status)


@dataclass(frozen=True, slots=True)
class Attr:
    kind: int
    mode: int
    size: int
    used: int
    fileid: int
    mtime: tuple[int, int]


def fattr3(u: Unpacker) -> Attr:
    kind, mode = u.u32(), u.u32()
    u.u32(), u.u32(), u.u32()  # nlink, uid, gid
    size, used = u.u64(), u.u64()
    u.u32(), u.u32()  # rdev
    u.u64()  # fsid
    fileid = u.u64()
    u.u32(), u.u32()  # atime
    mtime = (u.u32(), u.u32())
    u.u32(), u.u32()  # ctime
    return Attr(kind, mode, size, used, fileid, mtime)


def post_op_attr(u: Unpacker) -> Attr | None:
    return u.optional(fattr3)


def wcc_data(u: Unpacker) -> Attr | None:
    if u.boolean():
        u.u64(), u.u32(), u.u32(), u.u32(), u.u32()  # size, mtime, ctime before
    return post_op_attr(u)


def fh3(u: Unpacker) -> bytes:
    fh = u.opaque(FHSIZE)
    if not fh:
        raise NfsProtocolError("an empty file handle")
    return fh


def diropargs(p: Packer, directory: bytes, name: str) -> Packer:
    return p.opaque(directory).string(name)


def sattr3(p: Packer, mode: int | None = None, size: int | None = None) -> Packer:
    p.boolean(mode is not None)
    if mode is not None:
        p.u32(mode)
    p.boolean(False).boolean(False)  # uid, gid: the server's (our credentials)
    p.boolean(size is not None)
    if size is not None:
        p.u64(size)
    return p.u32(1).u32(1)  # atime, mtime: SET_TO_SERVER_TIME


# ------------------------------------------------------------------ argument builders

def getport_args(prog: int, vers: int) -> bytes:
    return Packer().u32(prog).u32(vers).u32(IPPROTO_TCP).u32(0).data()


def mnt_args(export: str) -> bytes:
    if len(export.encode()) > MAX_PATH:
        raise NfsProtocolError("an export path longer than 1024 bytes")
    return Packer().string(export).data()


def mnt_result(u: Unpacker, export: str) -> bytes:
    status = u.u32()
    if status != 0:
        raise status_error(f"MOUNT {export}", status, MOUNT_STATUS)
    fh = fh3(u)
    u.array(lambda x: x.u32(), 64)  # auth flavours: AUTH_SYS is what we send
    return fh


@dataclass(frozen=True, slots=True)
class FsStat:
    total: int
    free: int
    avail: int
    files: int
    ffree: int


@dataclass(frozen=True, slots=True)
class FsInfo:
    rtmax: int
    wtmax: int
    dtpref: int


@dataclass(frozen=True, slots=True)
class Entry:
    name: str
    cookie: int
    attr: Attr | None
    fh: bytes | None
