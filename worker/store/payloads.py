"""Payload storage: what a job writes, sealed at rest.

Small payloads (up to `inline_limit`) are one sealed blob in Redis at
`datapost:payload:<job_id>`, so a bulk enqueue can pipeline them with the job records. Larger
ones are sealed as a chunked stream into `<directory>/<job_id[:2]>/<job_id>.sealed` (a volume
every worker mounts), written through a temp file and an atomic rename and never held in
memory whole. Both are bound to their job (aad b"payload:<job_id>"), so a payload moved to
another job fails to open.
"""

from __future__ import annotations

import io
import itertools
import os
import re
import stat
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, Literal

import redis

from ..crypto import DEFAULT_CHUNK_SIZE, Keyring, SealedReader, SealedWriter
from ..errors import PayloadError, PayloadMissing, PayloadTooLarge, ValidationError
from . import keys

if TYPE_CHECKING:
    from ..config import Settings

IO_CHUNK = 1024 * 1024
READ_ALL_LIMIT = 64 * 1024 * 1024
_JOB_ID = re.compile(r"[A-Za-z0-9_-]{1,128}")

PayloadSource = bytes | bytearray | memoryview | str | os.PathLike | BinaryIO


@dataclass(frozen=True)
class PayloadRef:
    """Where a job's payload is and how big it is; stored in the job hash."""

    kind: Literal["inline", "file"]
    size: int

    def to_fields(self) -> dict[str, str]:
        return {"payload_kind": self.kind, "payload_size": str(self.size)}

    @classmethod
    def from_fields(cls, fields: Mapping[Any, Any]) -> PayloadRef:
        """Read back from a job hash (str or bytes keys and values, as Redis returns them)."""
        def get(name: str) -> str:
            value = fields.get(name, fields.get(name.encode()))
            return value.decode() if isinstance(value, bytes) else str(value or "")

        kind, size = get("payload_kind"), get("payload_size")
        if kind not in ("inline", "file") or not size.isdigit():
            raise PayloadError("job record has no valid payload reference")
        return cls(kind, int(size))  # type: ignore[arg-type]


def check_job_id(job_id: Any) -> str:
    """Job ids name files: letters, digits, '-' and '_' only (no path tricks)."""
    if not isinstance(job_id, str) or not _JOB_ID.fullmatch(job_id):
        raise ValidationError("job id must be 1-128 letters, digits, '-' or '_'")
    return job_id


def _aad(job_id: str) -> bytes:
    return b"payload:" + job_id.encode()


class PayloadStore:
    """Seal payloads into Redis (small) or the payload directory (large)."""

    def __init__(self, redis: redis.Redis, keyring: Keyring, directory: Path, inline_limit: int,
                 max_bytes: int, *, chunk_size: int = DEFAULT_CHUNK_SIZE) -> None:
        if redis.connection_pool.connection_kwargs.get("decode_responses"):
            raise ValueError("PayloadStore needs a Redis client with decode_responses=False")
        if not 0 <= inline_limit <= READ_ALL_LIMIT or max_bytes < 1:
            raise ValueError("inline_limit must be 0..64 MiB and max_bytes at least 1")
        self.redis = redis
        self.keyring = keyring
        self.directory = Path(directory)
        self.inline_limit = inline_limit
        self.max_bytes = max_bytes
        self.chunk_size = chunk_size

    @classmethod
    def from_settings(cls, redis: redis.Redis, keyring: Keyring, settings: Settings) -> PayloadStore:
        delivery = settings.delivery
        directory = delivery.payload_dir or settings.data_dir / "payloads"
        return cls(redis, keyring, directory, delivery.inline_payload_max, delivery.max_payload_bytes)

    def path(self, job_id: str) -> Path:
        """Where a large payload of this job lives."""
        check_job_id(job_id)
        return self.directory / job_id[:2] / f"{job_id}.sealed"

    # -- write --

    def put(self, job_id: str, source: PayloadSource, *,
            pipe: redis.client.Pipeline | None = None) -> PayloadRef:
        """Seal and store a payload: bytes, a path to a regular file, or a binary stream.

        PayloadTooLarge past `max_bytes` leaves nothing behind. With `pipe`, an inline payload
        is queued on it (nothing is written until the caller executes it).
        """
        ref, sealed = self.stage(job_id, source)
        if sealed is not None:
            (pipe if pipe is not None else self.redis).set(keys.payload(job_id), sealed)
        return ref

    def stage(self, job_id: str, source: PayloadSource) -> tuple[PayloadRef, bytes | None]:
        """Like `put`, but an inline payload is returned sealed instead of written: the
        caller stores it at `keys.payload(job_id)` (the job-creation script does, together
        with the job). A large payload is written to the payload directory as by `put`, and
        None is returned beside its ref."""
        check_job_id(job_id)
        if isinstance(source, bytes | bytearray | memoryview):
            view = memoryview(source).cast("B")
            self._check_size(len(view))
            if len(view) <= self.inline_limit:
                return self._seal_inline(job_id, source if isinstance(source, bytes) else bytes(view))
            return self._put_file(job_id, _slices(view, IO_CHUNK)), None
        if isinstance(source, str | os.PathLike):
            with _open_regular(source) as file:
                self._check_size(os.fstat(file.fileno()).st_size)
                return self._stage_stream(job_id, file, os.fsdecode(source))
        if isinstance(source, io.TextIOBase):
            raise ValidationError("payload stream is in text mode: open it in binary mode ('rb')")
        if not callable(getattr(source, "read", None)):
            raise ValidationError("payload must be bytes, a path or a readable binary stream, "
                                  f"not {type(source).__name__}")
        return self._stage_stream(job_id, source, "payload stream")

    def _stage_stream(self, job_id: str, stream: BinaryIO,
                      label: str) -> tuple[PayloadRef, bytes | None]:
        head = _read_up_to(stream, self.inline_limit + 1, label)
        if len(head) <= self.inline_limit:
            return self._seal_inline(job_id, head)
        return self._put_file(job_id, itertools.chain([head], _read_chunks(stream, label))), None

    def _seal_inline(self, job_id: str, data: bytes) -> tuple[PayloadRef, bytes]:
        return PayloadRef("inline", len(data)), self.keyring.seal(data, _aad(job_id))

    def _put_file(self, job_id: str, chunks: Iterable[bytes]) -> PayloadRef:
        final = self.path(job_id)
        try:
            self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            final.parent.mkdir(mode=0o700, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=final.parent, prefix=f".{job_id}.", suffix=".tmp")
        except OSError as exc:
            raise PayloadError(f"cannot write payload of job {job_id}: {exc.strerror}") from None
        try:
            with os.fdopen(fd, "wb") as file:
                writer = SealedWriter(self.keyring, file, _aad(job_id), self.chunk_size)
                for chunk in chunks:
                    self._check_size(writer.size + len(chunk))
                    writer.write(chunk)
                size = writer.close()
                file.flush()
                os.fsync(file.fileno())
            os.replace(tmp, final)
            _fsync_dir(final.parent)
        except BaseException as exc:
            with suppress(OSError):
                os.unlink(tmp)
            if isinstance(exc, OSError):
                raise PayloadError(f"cannot write payload of job {job_id}: {exc.strerror}") from None
            raise
        return PayloadRef("file", size)

    def _check_size(self, size: int) -> None:
        if size > self.max_bytes:
            raise PayloadTooLarge(f"payload is larger than the limit of {self.max_bytes} bytes "
                                  "(DATAPOST_MAX_PAYLOAD_BYTES)")

    # -- read and delete --

    def open(self, job_id: str, ref: PayloadRef) -> PayloadReader:
        """A reader for a stored payload: PayloadMissing if gone, SealError if tampered."""
        check_job_id(job_id)
        if ref.kind == "inline":
            blob = self.redis.get(keys.payload(job_id))
            if blob is None:
                raise PayloadMissing(f"payload of job {job_id} is not in Redis")
            data = self.keyring.open(blob, _aad(job_id))
            return PayloadReader(job_id, ref.size, data=data)
        reader = PayloadReader(job_id, ref.size, path=self.path(job_id), keyring=self.keyring)
        reader.check()
        return reader

    def delete(self, job_id: str, ref: PayloadRef | None = None, *,
               pipe: redis.client.Pipeline | None = None) -> None:
        """Remove a payload (both places when `ref` is None); a missing one is not an error."""
        check_job_id(job_id)
        if ref is None or ref.kind == "inline":
            (pipe if pipe is not None else self.redis).delete(keys.payload(job_id))
        if ref is None or ref.kind == "file":
            with suppress(FileNotFoundError):
                self.path(job_id).unlink()


class PayloadReader:
    """A stored payload, readable in chunks as often as needed (an upload may be retried)."""

    def __init__(self, job_id: str, size: int, *, data: bytes | None = None,
                 path: Path | None = None, keyring: Keyring | None = None) -> None:
        self.job_id = job_id
        self.size = size
        self._data = data
        self._path = path
        self._keyring = keyring
        if data is not None and len(data) != size:
            raise PayloadError(f"payload of job {job_id} does not match the size in its record")

    def check(self) -> None:
        """Verify a file payload exists and its header names a key we hold."""
        with self._open_file() as file:
            SealedReader(self._keyring, file, _aad(self.job_id))  # type: ignore[arg-type]

    def chunks(self, chunk_size: int = IO_CHUNK) -> Iterator[bytes]:
        """Plaintext in chunks of `chunk_size` (the last may be shorter), from the start."""
        if chunk_size < 1:
            raise ValueError("chunk_size must be positive")
        if self._data is not None:
            return _slices(memoryview(self._data), chunk_size)
        return _rechunk(self._file_chunks(), chunk_size)

    __iter__ = chunks

    def read(self) -> bytes:
        """The whole payload; refused past 64 MiB (use `chunks`)."""
        if self.size > READ_ALL_LIMIT:
            raise PayloadError(f"payload of job {self.job_id} is {self.size} bytes; read() stops "
                               f"at {READ_ALL_LIMIT}: iterate chunks() instead")
        return self._data if self._data is not None else b"".join(self.chunks())

    def _open_file(self) -> BinaryIO:
        try:
            return open(self._path, "rb")  # type: ignore[arg-type]
        except FileNotFoundError:
            raise PayloadMissing(f"payload file of job {self.job_id} is missing") from None
        except OSError as exc:
            raise PayloadError(f"cannot read payload of job {self.job_id}: {exc.strerror}") from None

    def _file_chunks(self) -> Iterator[bytes]:
        total = 0
        with self._open_file() as file:
            for chunk in SealedReader(self._keyring, file, _aad(self.job_id)):  # type: ignore[arg-type]
                total += len(chunk)
                yield chunk
        if total != self.size:
            raise PayloadError(f"payload of job {self.job_id} does not match the size in its record")


# -- helpers --

def _open_regular(path: str | os.PathLike) -> BinaryIO:
    """Open a regular file for reading without blocking on FIFOs or devices."""
    name = os.fsdecode(path)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        raise PayloadError(f"cannot read {name}: {exc.strerror}") from None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise PayloadError(f"cannot read {name}: not a regular file")
    os.set_blocking(fd, True)
    return os.fdopen(fd, "rb")


def _read(stream: BinaryIO, size: int, label: str) -> bytes:
    try:
        data = stream.read(size)
    except io.UnsupportedOperation:
        raise ValidationError(f"{label} is not readable") from None
    except OSError as exc:
        raise PayloadError(f"cannot read {label}: {exc.strerror or exc}") from None
    if isinstance(data, str):
        raise ValidationError("payload stream is in text mode: open it in binary mode ('rb')")
    if data is None:
        raise PayloadError(f"cannot read {label}: it is non-blocking and has no data")
    return bytes(data)


def _read_up_to(stream: BinaryIO, size: int, label: str) -> bytes:
    parts, remaining = [], size
    while remaining > 0:
        part = _read(stream, min(remaining, IO_CHUNK), label)
        if not part:
            break
        parts.append(part)
        remaining -= len(part)
    return b"".join(parts)


def _read_chunks(stream: BinaryIO, label: str) -> Iterator[bytes]:
    while chunk := _read(stream, IO_CHUNK, label):
        yield chunk


def _slices(view: memoryview, size: int) -> Iterator[bytes]:
    for start in range(0, len(view), size):
        yield bytes(view[start:start + size])


def _rechunk(chunks: Iterable[bytes], size: int) -> Iterator[bytes]:
    buffer = bytearray()
    for chunk in chunks:
        if not buffer and len(chunk) == size:
            yield chunk
            continue
        buffer += chunk
        while len(buffer) >= size:
            yield bytes(buffer[:size])
            del buffer[:size]
    if buffer:
        yield bytes(buffer)


def _fsync_dir(directory: Path) -> None:
    """Make a rename durable (best effort where directories cannot be opened)."""
    with suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
