"""Encrypted vMotion (SEC-1): modes, the per-migration key, and AES-GCM sealing of page data.

The orchestrator makes a fresh 256-bit key for each migration and puts it in the
migration's ticket (SEC-4), which reaches both hosts' ticket books; the source VM
and the incoming VM read it from there. It never crosses the management
connection; both use it for this migration only. Nonces are (stream number, frame
counter): unique per key, since each stream has its own number and a counter only
goes up.
"""

from __future__ import annotations

import os
import struct

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from ..errors import InvalidArgument

DISABLED, OPPORTUNISTIC, REQUIRED = "disabled", "opportunistic", "required"
MODES = (DISABLED, OPPORTUNISTIC, REQUIRED)
CIPHER = "AES-256-GCM"
NONCE = 12
TAG = 16
OVERHEAD = NONCE + TAG


def check_mode(mode: str) -> str:
    if mode not in MODES:
        raise InvalidArgument(f"Encryption mode {mode!r}: use one of {', '.join(MODES)}")
    return mode


def new_key() -> bytes:
    return AESGCM.generate_key(bit_length=256)


def decide(mode: str, target_can: bool) -> tuple[bool, str]:
    """(encrypt?, why) for a requested mode and what the target agent declared.

    `required` with a target that cannot is not decided here: the caller refuses.
    """
    if mode == DISABLED:
        return False, "encryption disabled for this migration"
    if target_can:
        return True, f"encrypted ({mode})"
    return False, ("target host does not support encrypted vMotion: "
                   "fell back to plain (opportunistic)")


class Sealer:
    """Seals the payloads of one stream: nonce || AES-GCM(payload, header as AAD)."""

    def __init__(self, key: bytes, stream: int) -> None:
        self._aead = AESGCM(key)
        self._stream = stream
        self._counter = 0

    def seal(self, header: bytes, data: bytes | memoryview) -> bytes:
        nonce, sealed = self.seal_parts(header, data)
        return nonce + sealed

    def seal_parts(self, header: bytes, data: bytes | memoryview) -> tuple[bytes, bytes]:
        """(nonce, ciphertext and tag): sent as two buffers, not joined into a third."""
        self._counter += 1
        nonce = struct.pack("!IQ", self._stream, self._counter)
        return nonce, self._aead.encrypt(nonce, bytes(data), header)


class Opener:
    def __init__(self, key: bytes) -> None:
        self._aead = AESGCM(key)

    def open(self, header: bytes, payload: memoryview) -> bytes:
        """The plain pages; cryptography's InvalidTag when anything was changed on the way."""
        return self._aead.decrypt(payload[:NONCE], payload[NONCE:], header)

    def open_into(self, header: bytes, payload: memoryview, out: memoryview) -> None:
        """Decrypt straight into `out` (guest memory; len(payload) - OVERHEAD bytes)."""
        self._aead.decrypt_into(payload[:NONCE], payload[NONCE:], header, out)


def random_device_state(size: int = 4096) -> bytes:
    """The VM's device state at boot (vCPU registers, virtual devices): opaque bytes."""
    return os.urandom(size)
