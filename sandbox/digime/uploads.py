"""Taking upload bodies off the wire without holding them in memory.

Multipart parts are spooled to disk by Starlette (anything over 1 MiB); raw bodies are
streamed here, hashed and written in 1 MiB batches on a worker thread.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import BinaryIO

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData, UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser
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


async def single_file_part(request: Request, field: str = "file") -> tuple[FormData, UploadFile]:
    """The one multipart file part named `field`; 406/400 ValidationErrors otherwise.

    The caller must `await form.close()` when done (it holds the spooled temp file).
    """
    kind = media_type(request)
    if kind != "multipart/form-data":
        raise validation(f"Content-Type must be multipart/form-data (got {kind})", status=406)
    try:
        # The parser directly: Request.form() turns parse errors into a bare HTTPException.
        parser = MultiPartParser(request.headers, request.stream(), max_files=1, max_fields=4)
        form = await parser.parse()
    except MultiPartException as exc:
        raise validation(
            f"the multipart body was rejected ({exc}); it must hold exactly one part, "
            f"a file named '{field}'") from None
    items = form.multi_items()
    names = [name for name, _ in items]
    upload = items[0][1] if len(items) == 1 else None
    if names != [field] or not isinstance(upload, UploadFile):
        await form.close()
        raise validation(
            f"the multipart body must hold exactly one part, a file named '{field}' "
            f"(found {names or 'no parts'})")
    if not upload.filename:
        await form.close()
        raise validation(f"the '{field}' part needs a filename in its Content-Disposition")
    return form, upload
