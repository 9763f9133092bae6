"""Paths inside an export: components only, never out of it (SEC-5's rule for file names).

A path is relative to the export's root ("/" and "" are the root itself;
a leading "/" is the root too). "..", "." and empty components between
slashes are refused rather than resolved: a caller that builds a path from
a name it was given must not reach a sibling export or the server's tree.
"""

from __future__ import annotations

from .errors import NfsPathError

MAX_NAME = 255  # bytes of one component (NFS 3 servers commonly refuse more)
MAX_DEPTH = 64


def components(path: str) -> list[str]:
    """The names of `path` from the export's root; NfsPathError when one may not be."""
    if "\0" in path:
        raise NfsPathError(f"NFS path {path!r} holds a NUL byte")
    inner = path[1:] if path.startswith("/") else path
    if inner in ("", "/"):
        return []
    parts = inner.rstrip("/").split("/") if inner.endswith("/") else inner.split("/")
    if len(parts) > MAX_DEPTH:
        raise NfsPathError(f"NFS path {path!r} is deeper than {MAX_DEPTH} components")
    for part in parts:
        if part in ("", ".", ".."):
            raise NfsPathError(f"NFS path {path!r}: {part or 'an empty name'!r} would leave "
                               "or bend the path inside the export; give plain names")
        try:
            # surrogateescape: a name the server listed in bytes that are not UTF-8 round-trips
            size = len(part.encode("utf-8", errors="surrogateescape"))
        except UnicodeEncodeError:
            raise NfsPathError(f"NFS path {path!r}: a name that is not text") from None
        if size > MAX_NAME:
            raise NfsPathError(f"NFS path {path!r}: a name longer than {MAX_NAME} bytes")
    return parts


def split(path: str) -> tuple[list[str], str]:
    """(the parent's components, the last name); the root itself has no name."""
    parts = components(path)
    if not parts:
        raise NfsPathError("the export's root is not a file: give a name in it")
    return parts[:-1], parts[-1]
