"""What a write uploads: a sized, re-iterable source of byte chunks.

A retry reads the payload again from the start, so sources must not be one-shot streams.
The worker's payload store provides file-backed (decrypt-while-reading) sources; `BytesPayload`
covers tests and small inline writes.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol, runtime_checkable

from ..errors import PayloadError

DEFAULT_CHUNK = 256 * 1024


@runtime_checkable
class PayloadSource(Protocol):
    """`size` in bytes; `chunks()` yields exactly that many bytes, starting over on each call."""

    @property
    def size(self) -> int: ...

    def chunks(self) -> Iterator[bytes]: ...


class BytesPayload:
    """An in-memory payload. repr shows the size only."""

    __slots__ = ("_chunk", "_data")

    def __init__(self, data: bytes, *, chunk_size: int = DEFAULT_CHUNK) -> None:
        if not isinstance(data, bytes | bytearray | memoryview):
            raise TypeError("BytesPayload needs bytes")
        if chunk_size < 1:
            raise ValueError("chunk_size must be positive")
        self._data = bytes(data)
        self._chunk = chunk_size

    @property
    def size(self) -> int:
        return len(self._data)

    def chunks(self) -> Iterator[bytes]:
        view = memoryview(self._data)
        for start in range(0, len(view), self._chunk):
            yield bytes(view[start:start + self._chunk])

    def __repr__(self) -> str:
        return f"BytesPayload(size={len(self._data)})"


def checked_chunks(payload: PayloadSource) -> Iterator[bytes]:
    """`payload.chunks()`, failing with PayloadError as soon as the bytes stop matching
    `payload.size` (the request's Content-Length was promised from it)."""
    expected = payload.size
    seen = 0
    for chunk in payload.chunks():
        if not chunk:
            continue
        seen += len(chunk)
        if seen > expected:
            raise PayloadError(f"payload yielded more than its declared size of {expected} bytes")
        yield bytes(chunk) if not isinstance(chunk, bytes) else chunk
    if seen != expected:
        raise PayloadError(f"payload yielded {seen} bytes, but declared {expected}")


def payload_size(payload: PayloadSource) -> int:
    size = payload.size
    if isinstance(size, bool) or not isinstance(size, int) or size < 0:
        raise PayloadError("payload size must be a non-negative integer")
    return size
