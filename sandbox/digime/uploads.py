"""Taking upload bodies off the wire without holding them in memory.

Raw bodies are streamed here, hashed and written in 1 MiB batches on a worker thread. A
multipart body's one file part is parsed here too (not spooled to a temp file first): its
content streams to the caller in batches of at least 1 MiB as it arrives.
"""

from __future__ import annotations

import codecs
import hashlib
import re
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import BinaryIO

from python_multipart.multipart import parse_options_header
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request

from .errors import validation
from .wire import media_type

BATCH = 1024 * 1024


async def receive_raw(request: Request, dest: Path | None) -> tuple[int, str]:
    """Stream the body into `dest` (or only hash it); returns (size, sha256 hex)."""
    digest = hashlib.sha256()
    size = 0
    out: BinaryIO | None = dest.open("wb") if dest is not None else None
    buffer = bytearray()

    def flush(data: bytes) -> None:
        digest.update(data)
        if out is not None:
            out.write(data)

    try:
        async for chunk in request.stream():
            buffer += chunk
            size += len(chunk)
            if len(buffer) >= BATCH:
                data, buffer = bytes(buffer), bytearray()
                await run_in_threadpool(flush, data)
        if buffer:
            await run_in_threadpool(flush, bytes(buffer))
    except BaseException:
        if out is not None:
            out.close()
            dest.unlink(missing_ok=True)  # type: ignore[union-attr]
        raise
    if out is not None:
        out.close()
    return size, digest.hexdigest()


async def single_file_part(request: Request, consume: Callable[[memoryview], object],
                           field: str = "file") -> str:
    """Stream the one multipart file part named `field` into `consume`; returns its filename.

    The body must be exactly one part whose Content-Disposition names `field` and gives a
    filename; anything else is a 406/400 ValidationErrors. The part's content goes to
    `consume` as it arrives, in order, on a worker thread, in pieces of at least `BATCH`
    bytes (but the last); a view is only valid during its call. The closing boundary is
    found with `bytes.find` on those pieces, never byte by byte. An error about the body's
    shape past the part's headers (a second part, a missing closing boundary) is raised
    after `consume` saw the content before it, so the caller must not keep what it wrote
    until this returns.
    """
    kind = media_type(request)
    if kind != "multipart/form-data":
        raise validation(f"Content-Type must be multipart/form-data (got {kind})", status=406)
    _, params = parse_options_header(request.headers["content-type"])
    boundary = params.get(b"boundary")
    if not boundary:
        raise _rejected("Missing boundary in multipart.", field)
    charset = _charset(params.get(b"charset"))
    body = _Body(request.stream(), field)
    opening = b"--" + boundary
    await body.fill(len(opening) + 2)
    if not body.buf.startswith(opening):
        raise _rejected("it does not start with its boundary", field)
    line_end = await body.find(b"\r\n", len(opening), limit=HEADER_LIMIT)
    if body.buf[len(opening):len(opening) + 2] == b"--":
        raise validation(f"the multipart body must hold exactly one part, a file named '{field}' "
                         "(found no parts)")
    if line_end < 0 or body.buf[len(opening):line_end].strip(b" \t"):
        raise _rejected("no line break after the boundary", field)
    headers_end = await body.find(b"\r\n\r\n", line_end, limit=HEADER_LIMIT)
    if headers_end < 0:
        raise _rejected("the part's headers do not end", field)
    headers = _part_headers(bytes(body.buf[line_end + 2:headers_end]), field)
    filename = _file_part(headers, charset, field)
    await body.stream_part(headers_end + 4, b"\r\n" + opening, consume)
    return filename


HEADER_LIMIT = 16 * 1024
_TOKEN = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")


def _rejected(reason: str, field: str):
    return validation(f"the multipart body was rejected ({reason}); it must hold exactly one "
                      f"part, a file named '{field}'")


def _charset(value: bytes | None) -> str:
    try:
        return codecs.lookup((value or b"utf-8").decode("latin-1")).name
    except LookupError:
        return "latin-1"


def _decode(raw: bytes, charset: str) -> str:
    try:
        return raw.decode(charset)
    except UnicodeDecodeError:
        return raw.decode("latin-1")


def _part_headers(block: bytes, field: str) -> dict[bytes, bytes]:
    headers: dict[bytes, bytes] = {}
    for line in block.split(b"\r\n") if block else []:
        name, colon, value = line.partition(b":")
        if not colon or not _TOKEN.fullmatch(name):
            raise _rejected("a part header is malformed", field)
        headers[name.lower()] = value.strip(b" \t")
    return headers


def _file_part(headers: dict[bytes, bytes], charset: str, field: str) -> str:
    _, options = parse_options_header(headers.get(b"content-disposition", b"").decode("latin-1"))
    if b"name" not in options:
        raise _rejected('The Content-Disposition header field "name" must be provided.', field)
    name = _decode(options[b"name"], charset)
    if name != field or b"filename" not in options:
        raise validation(f"the multipart body must hold exactly one part, a file named '{field}' "
                         f"(found {[name]}{'' if b'filename' in options else ', not a file'})")
    filename = _decode(options[b"filename"], charset)
    if not filename:
        raise validation(f"the '{field}' part needs a filename in its Content-Disposition")
    return filename


class _Body:
    """The request body as it arrives, in one buffer that only holds what is not consumed."""

    def __init__(self, stream: AsyncIterator[bytes], field: str) -> None:
        self._stream = stream
        self.field = field
        self.buf = bytearray()

    async def more(self) -> bool:
        async for chunk in self._stream:
            if chunk:
                self.buf += chunk
                return True
        return False

    async def fill(self, size: int) -> None:
        while len(self.buf) < size and await self.more():
            pass

    async def find(self, what: bytes, start: int, *, limit: int) -> int:
        """Index of `what` at or after `start`, reading on as needed (-1: not within `limit`
        bytes of `start`, or the body ended)."""
        scanned = start
        while True:
            at = self.buf.find(what, scanned, start + limit + len(what))
            if at >= 0:
                return at
            scanned = max(start, len(self.buf) - len(what) + 1)
            if len(self.buf) >= start + limit + len(what) or not await self.more():
                return -1

    async def stream_part(self, start: int, delimiter: bytes,
                          consume: Callable[[memoryview], object]) -> None:
        """Hand the content from `start` up to `delimiter` to `consume`, then check that
        the delimiter closes the body (`--`) rather than opening another part."""
        keep = len(delimiter) - 1  # a tail that may be the start of the delimiter
        scanned = start
        while (at := self.buf.find(delimiter, scanned)) < 0:
            safe = len(self.buf) - keep  # everything before this is content
            if safe - start >= BATCH:
                await self._consume(start, safe, consume)
                start = scanned = 0
            else:
                scanned = max(start, safe)
            if not await self.more():
                raise _rejected("it ends before its closing boundary", self.field)
        await self._consume(start, at, consume)
        after = len(delimiter)  # the delimiter is at the start of the buffer now
        await self.fill(after + 2)
        if self.buf[after:after + 2] == b"--":
            while await self.more():  # the epilogue, if any, is ignored
                del self.buf[:]
            return
        line_end = await self.find(b"\r\n", after, limit=HEADER_LIMIT)
        if line_end >= 0 and not self.buf[after:line_end].strip(b" \t"):
            raise validation("the multipart body must hold exactly one part, a file named "
                             f"'{self.field}' (found more than one part)")
        raise _rejected("its boundary appears inside the part", self.field)

    async def _consume(self, start: int, end: int,
                       consume: Callable[[memoryview], object]) -> None:
        if end > start:
            view = memoryview(self.buf)[start:end]
            try:
                await run_in_threadpool(consume, view)
            finally:
                view.release()
        del self.buf[:end]
