"""Sealing: AES-256-GCM under a master keyring, for credentials and payloads at rest.

A sealed blob names the key that sealed it (a short key id), so the master key can rotate:
new data is sealed under the current key, old data still opens under a previous key until
`reseal` moves it. Every blob is bound to an `aad` naming where it belongs (for example
b"cred:digime:alice"), so a blob copied into another record fails to open.

Two formats:

* blob (small values)::

      version (1) | kid (4) | nonce (12) | ciphertext + tag (16)

  The version byte and kid are authenticated too (they prefix the AAD).

* stream (large payloads, O(chunk) memory for any size), the "STREAM" construction of
  Hoang, Reyhanitabar, Rogaway and Vizár (as in Tink and age)::

      header: magic "DPS\\x00" (4) | version (1) | kid (4) | nonce prefix (8) | chunk size (4, BE)
      chunk i: AES-GCM(nonce = prefix || i (4, BE),
                       aad = header || i (4, BE) || final flag (1) || caller aad)

  Every chunk but the last holds exactly `chunk size` plaintext bytes; the last holds
  0..chunk size and carries the final flag. Dropping, reordering or appending chunks, or
  editing the header, makes some chunk fail to authenticate.

Error messages never include key or plaintext bytes.
"""

from __future__ import annotations

import hashlib
import os
import struct
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, BinaryIO

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from ..errors import ConfigError, SealError

if TYPE_CHECKING:
    from ..config import Settings

KEY_SIZE = 32
KID_SIZE = 4
NONCE_SIZE = 12
TAG_SIZE = 16

BLOB_VERSION = 1
BLOB_HEADER_SIZE = 1 + KID_SIZE
BLOB_MIN_SIZE = BLOB_HEADER_SIZE + NONCE_SIZE + TAG_SIZE

STREAM_MAGIC = b"DPS\x00"
STREAM_VERSION = 1
STREAM_PREFIX_SIZE = 8
STREAM_HEADER = struct.Struct(">4sB4s8sI")  # magic, version, kid, nonce prefix, chunk size
STREAM_MAX_CHUNK = 64 * 1024 * 1024
STREAM_MAX_CHUNKS = 2**32
DEFAULT_CHUNK_SIZE = 1024 * 1024

_KID_DOMAIN = b"datapost/master-key-id/v1\x00"

MISSING_KEY_MESSAGE = (
    "DATAPOST_MASTER_KEY is not set: generate one with "
    "`python -c 'import base64,os;print(base64.b64encode(os.urandom(32)).decode())'`"
)


def key_id(key: bytes) -> bytes:
    """A short stable id for a key: it says which key sealed a blob without revealing it."""
    return hashlib.sha256(_KID_DOMAIN + key).digest()[:KID_SIZE]


class Keyring:
    """The current master key (seals) and previous ones (still open), looked up by key id."""

    def __init__(self, current: bytes, previous: Sequence[bytes] = ()) -> None:
        self._ciphers: dict[bytes, AESGCM] = {}
        for key in (current, *previous):
            if not isinstance(key, bytes | bytearray) or len(key) != KEY_SIZE:
                raise ConfigError(f"a master key must be {KEY_SIZE} bytes")
            self._ciphers.setdefault(key_id(bytes(key)), AESGCM(bytes(key)))
        self._current = key_id(bytes(current))

    @classmethod
    def from_settings(cls, settings: Settings) -> Keyring:
        """Build from `master_key` and `previous_master_keys` (Secret values)."""
        if settings.master_key is None:
            raise ConfigError(MISSING_KEY_MESSAGE)
        return cls(settings.master_key.reveal(),
                   [key.reveal() for key in settings.previous_master_keys])

    @property
    def current_kid(self) -> str:
        return self._current.hex()

    @property
    def kids(self) -> list[str]:
        """Every key id this keyring can open, current first."""
        return [kid.hex() for kid in self._ciphers]

    def __repr__(self) -> str:
        return f"Keyring(current={self.current_kid!r}, kids={self.kids!r})"

    def cipher(self, kid: bytes) -> AESGCM:
        """The cipher for a raw key id, or SealError when this keyring does not hold it."""
        try:
            return self._ciphers[kid]
        except KeyError:
            raise SealError(f"sealed under key {kid.hex()}, which is not in the keyring "
                            "(set it in DATAPOST_MASTER_KEY_PREVIOUS)") from None

    @property
    def current_cipher(self) -> tuple[bytes, AESGCM]:
        return self._current, self._ciphers[self._current]

    # -- blobs --

    def seal(self, plaintext: bytes, aad: bytes) -> bytes:
        """Encrypt under the current key; `aad` names where the blob belongs."""
        kid, cipher = self.current_cipher
        header = bytes([BLOB_VERSION]) + kid
        nonce = os.urandom(NONCE_SIZE)
        return header + nonce + cipher.encrypt(nonce, bytes(plaintext), header + aad)

    def open(self, blob: bytes, aad: bytes) -> bytes:
        """Decrypt a blob sealed with the same `aad`; SealError on any mismatch."""
        blob = bytes(blob)
        if len(blob) < BLOB_MIN_SIZE:
            raise SealError(f"sealed blob is too short ({len(blob)} bytes)")
        if blob[0] != BLOB_VERSION:
            raise SealError(f"sealed blob has unknown format version {blob[0]}")
        header = blob[:BLOB_HEADER_SIZE]
        cipher = self.cipher(header[1:])
        nonce = blob[BLOB_HEADER_SIZE:BLOB_HEADER_SIZE + NONCE_SIZE]
        try:
            return cipher.decrypt(nonce, blob[BLOB_HEADER_SIZE + NONCE_SIZE:], header + aad)
        except InvalidTag:
            raise SealError("sealed blob failed authentication (tampered, or sealed for "
                            "another record)") from None

    @staticmethod
    def kid_of(blob: bytes) -> str:
        """The key id a blob was sealed under (no key needed)."""
        if len(blob) < BLOB_MIN_SIZE or blob[0] != BLOB_VERSION:
            raise SealError("not a sealed blob")
        return bytes(blob[1:BLOB_HEADER_SIZE]).hex()


# -- streams --

def _chunk_nonce(prefix: bytes, index: int) -> bytes:
    return prefix + index.to_bytes(4, "big")


def _chunk_aad(header: bytes, index: int, final: bool, aad: bytes) -> bytes:
    return header + index.to_bytes(4, "big") + (b"\x01" if final else b"\x00") + aad


class SealedWriter:
    """Seal a stream of writes into `fileobj` chunk by chunk; memory stays O(chunk_size).

    `close()` writes the final chunk and returns the plaintext size; it does not close
    `fileobj`. A writer that is never closed leaves a stream that fails to open (truncated).
    """

    def __init__(self, keyring: Keyring, fileobj: BinaryIO, aad: bytes,
                 chunk_size: int = DEFAULT_CHUNK_SIZE) -> None:
        if not 1 <= chunk_size <= STREAM_MAX_CHUNK:
            raise ValueError(f"chunk_size must be from 1 to {STREAM_MAX_CHUNK}")
        kid, self._cipher = keyring.current_cipher
        self._prefix = os.urandom(STREAM_PREFIX_SIZE)
        self._header = STREAM_HEADER.pack(STREAM_MAGIC, STREAM_VERSION, kid, self._prefix,
                                          chunk_size)
        self._file = fileobj
        self._aad = bytes(aad)
        self._chunk_size = chunk_size
        self._buffer = bytearray()
        self._index = 0
        self._size = 0
        self._closed = False
        fileobj.write(self._header)

    def write(self, data: bytes) -> int:
        """Buffer `data`, sealing every whole chunk that is known not to be the last."""
        if self._closed:
            raise ValueError("write to a closed SealedWriter")
        view = memoryview(data).cast("B")
        self._size += len(view)
        size = self._chunk_size
        # A chunk is sealed only once more data follows it, since the last carries a flag.
        while len(self._buffer) + len(view) > size:
            take = size - len(self._buffer)
            if self._buffer:
                self._buffer += view[:take]
                self._emit(bytes(self._buffer), final=False)
                self._buffer.clear()
            else:
                self._emit(view[:size], final=False)
            view = view[take:]
        self._buffer += view
        return len(data)

    def close(self) -> int:
        """Seal the final chunk; returns the plaintext size. Idempotent."""
        if not self._closed:
            self._emit(bytes(self._buffer), final=True)
            self._buffer.clear()
            self._closed = True
        return self._size

    @property
    def size(self) -> int:
        return self._size

    def _emit(self, chunk: bytes | memoryview, final: bool) -> None:
        if self._index >= STREAM_MAX_CHUNKS:
            raise SealError("stream has too many chunks for its nonce space")
        nonce = _chunk_nonce(self._prefix, self._index)
        aad = _chunk_aad(self._header, self._index, final, self._aad)
        self._file.write(self._cipher.encrypt(nonce, bytes(chunk), aad))
        self._index += 1

    def __enter__(self) -> SealedWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()


def _read_exact(fileobj: BinaryIO, size: int) -> bytes:
    """Read up to `size` bytes, looping over short reads; shorter only at end of file."""
    parts = []
    remaining = size
    while remaining:
        part = fileobj.read(remaining)
        if not part:
            break
        parts.append(part)
        remaining -= len(part)
    return parts[0] if len(parts) == 1 else b"".join(parts)


class SealedReader:
    """Open a sealed stream; iterate it for verified plaintext chunks.

    The header is checked on construction (bad magic, version or unknown key: SealError).
    Chunks are yielded as they authenticate, so a consumer may see some plaintext before a
    later chunk fails: treat a SealError mid-stream as the failure of the whole payload.
    """

    def __init__(self, keyring: Keyring, fileobj: BinaryIO, aad: bytes) -> None:
        header = _read_exact(fileobj, STREAM_HEADER.size)
        if len(header) < STREAM_HEADER.size:
            raise SealError("sealed stream is truncated (incomplete header)")
        magic, version, kid, prefix, chunk_size = STREAM_HEADER.unpack(header)
        if magic != STREAM_MAGIC:
            raise SealError("not a sealed stream (bad magic)")
        if version != STREAM_VERSION:
            raise SealError(f"sealed stream has unknown format version {version}")
        if not 1 <= chunk_size <= STREAM_MAX_CHUNK:
            raise SealError("sealed stream has an invalid chunk size")
        self._cipher = keyring.cipher(kid)
        self.kid = kid.hex()
        self.chunk_size = chunk_size
        self._header = header
        self._prefix = prefix
        self._file = fileobj
        self._aad = bytes(aad)

    def __iter__(self) -> Iterator[bytes]:
        block = self.chunk_size + TAG_SIZE
        current = _read_exact(self._file, block)
        index = 0
        while True:
            following = _read_exact(self._file, block) if len(current) == block else b""
            final = not following
            if len(current) < TAG_SIZE:
                raise SealError("sealed stream is truncated")
            if index >= STREAM_MAX_CHUNKS:
                raise SealError("sealed stream has too many chunks")
            nonce = _chunk_nonce(self._prefix, index)
            aad = _chunk_aad(self._header, index, final, self._aad)
            try:
                plaintext = self._cipher.decrypt(nonce, current, aad)
            except InvalidTag:
                raise SealError(f"sealed stream chunk {index} failed authentication (tampered, "
                                "truncated, reordered or extended)") from None
            yield plaintext
            if final:
                return
            current, index = following, index + 1


def iter_open(keyring: Keyring, fileobj: BinaryIO, aad: bytes) -> Iterator[bytes]:
    """Yield verified plaintext chunks of a sealed stream (see SealedReader)."""
    return iter(SealedReader(keyring, fileobj, aad))
