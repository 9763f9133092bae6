"""XDR (RFC 4506) by hand: a packer and an unpacker over struct, nothing more.

Every length read from the wire is checked against what is left of the
reply (and against the caller's limit) before anything is sliced or
allocated, so a hostile length fails as NfsProtocolError instead of
costing memory.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import TypeVar

from .errors import NfsProtocolError

T = TypeVar("T")
_U32 = struct.Struct(">I")
_I32 = struct.Struct(">i")
_U64 = struct.Struct(">Q")
MAX_ARRAY = 1 << 16  # elements in any array we accept from a server


def _pad(n: int) -> int:
    return (4 - n % 4) % 4


class Packer:
    def __init__(self) -> None:
        self._parts: list[bytes] = []

    def u32(self, value: int) -> Packer:
        self._parts.append(_U32.pack(value))
        return self

    def i32(self, value: int) -> Packer:
        self._parts.append(_I32.pack(value))
        return self

    def u64(self, value: int) -> Packer:
        self._parts.append(_U64.pack(value))
        return self

    def boolean(self, value: bool) -> Packer:
        return self.u32(1 if value else 0)

    def fixed(self, data: bytes, size: int) -> Packer:
        """Fixed-length opaque of `size` bytes (padded to 4)."""
        if len(data) != size:
            raise ValueError(f"fixed opaque of {size} bytes given {len(data)}")
        self._parts.append(bytes(data) + b"\0" * _pad(size))
        return self

    def opaque(self, data: bytes) -> Packer:
        """Variable-length opaque: length, bytes, padding."""
        self.u32(len(data))
        self._parts.append(bytes(data))
        if _pad(len(data)):
            self._parts.append(b"\0" * _pad(len(data)))
        return self

    def string(self, text: str) -> Packer:
        return self.opaque(text.encode("utf-8", errors="surrogateescape"))

    def raw(self, data: bytes) -> Packer:
        """Already-encoded XDR (a nested structure)."""
        self._parts.append(data)
        return self

    def data(self) -> bytes:
        return b"".join(self._parts)


class Unpacker:
    def __init__(self, data: bytes | bytearray | memoryview, offset: int = 0) -> None:
        self._view = memoryview(data)
        self.pos = offset

    def remaining(self) -> int:
        return len(self._view) - self.pos

    def _take(self, n: int) -> memoryview:
        if n < 0 or n > self.remaining():
            raise NfsProtocolError(f"reply truncated: {n} bytes wanted at offset {self.pos}, "
                                   f"{self.remaining()} left")
        chunk = self._view[self.pos:self.pos + n]
        self.pos += n
        return chunk

    def u32(self) -> int:
        value: int = _U32.unpack(self._take(4))[0]
        return value

    def i32(self) -> int:
        value: int = _I32.unpack(self._take(4))[0]
        return value

    def u64(self) -> int:
        value: int = _U64.unpack(self._take(8))[0]
        return value

    def boolean(self) -> bool:
        value = self.u32()
        if value > 1:
            raise NfsProtocolError(f"boolean {value} at offset {self.pos - 4}")
        return value == 1

    def fixed(self, size: int) -> bytes:
        data = bytes(self._take(size))
        self._take(_pad(size))
        return data

    def opaque(self, limit: int) -> bytes:
        """Variable-length opaque of at most `limit` bytes."""
        n = self.u32()
        if n > limit:
            raise NfsProtocolError(f"opaque of {n} bytes at offset {self.pos - 4} exceeds "
                                   f"{limit}")
        return self.fixed(n)

    def opaque_view(self, limit: int) -> memoryview:
        """As opaque, without a copy (READ's data)."""
        n = self.u32()
        if n > limit:
            raise NfsProtocolError(f"opaque of {n} bytes at offset {self.pos - 4} exceeds "
                                   f"{limit}")
        data = self._take(n)
        self._take(_pad(n))
        return data

    def string(self, limit: int) -> str:
        return self.opaque(limit).decode("utf-8", errors="surrogateescape")

    def array(self, item: Callable[[Unpacker], T], limit: int = MAX_ARRAY) -> list[T]:
        n = self.u32()
        # Each element takes at least 4 bytes: a count larger than the rest cannot be true.
        if n > limit or n * 4 > self.remaining():
            raise NfsProtocolError(f"array of {n} elements at offset {self.pos - 4}")
        return [item(self) for _ in range(n)]

    def optional(self, item: Callable[[Unpacker], T]) -> T | None:
        return item(self) if self.boolean() else None

    def done(self) -> None:
        if self.remaining():
            raise NfsProtocolError(f"{self.remaining()} unexpected bytes at the end of a reply")
