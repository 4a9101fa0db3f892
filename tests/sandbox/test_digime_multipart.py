"""The sandbox's streaming parser for the postbox's one-part multipart body, fed through a
real Starlette request in chunks of every size: exact content, batching, and every shape
error the postbox reports."""

from __future__ import annotations

import asyncio
import os
from concurrent.futures import ThreadPoolExecutor

import pytest
from starlette.requests import Request

from sandbox.digime.errors import ApiError
from sandbox.digime.uploads import BATCH, single_file_part

BOUNDARY = "datapost-0123456789abcdef"


def body(content: bytes, *, boundary: str = BOUNDARY, name: str = "file",
         filename: str | None = "f.bin", extra: bytes = b"", epilogue: bytes = b"\r\n") -> bytes:
    disposition = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename is not None
                                                 else "")
    return (f"--{boundary}\r\nContent-Disposition: {disposition}\r\n"
            f"Content-Type: application/octet-stream\r\n\r\n").encode() + content + \
        f"\r\n--{boundary}".encode() + extra + b"--" + epilogue


def run(raw: bytes, step: int, content_type: str | None = None) -> tuple[str, bytes, list[int]]:
    """Parse `raw` arriving in pieces of `step` bytes; returns (filename, content, sizes of
    the pieces handed to consume)."""
    chunks = [raw[i:i + step] for i in range(0, len(raw), step)] or [b""]
    content_type = content_type or f"multipart/form-data; boundary={BOUNDARY}"

    async def main():
        queue = list(chunks)

        async def receive():
            data = queue.pop(0) if queue else b""
            return {"type": "http.request", "body": data, "more_body": bool(queue)}

        scope = {"type": "http", "method": "POST", "path": "/", "query_string": b"",
                 "headers": [(b"content-type", content_type.encode())]}
        got: list[bytes] = []
        name = await single_file_part(Request(scope, receive), lambda v: got.append(bytes(v)))
        return name, got

    # a thread of its own: a test before may have left an event loop running in this one
    with ThreadPoolExecutor(1) as pool:
        name, got = pool.submit(asyncio.run, main()).result()
    return name, b"".join(got), [len(g) for g in got]


NASTY = (b"\r\n--" + BOUNDARY.encode()[:-1] + b"x\r\n--datapost\r\n-\r\n--" +
         BOUNDARY.encode()[:10] + b"--\r\n" + b"\r" * 50 + b"\r\n--" + BOUNDARY.encode()[:-3])


@pytest.mark.parametrize("content", [b"", b"x", NASTY, NASTY * 3 + b"\r", os.urandom(5000)])
@pytest.mark.parametrize("step", [1, 2, 3, 7, 64, 1000, 1 << 20])
def test_content_arrives_exactly(content, step):
    name, got, _ = run(body(content), step)
    assert (name, got) == ("f.bin", content)


@pytest.mark.parametrize("step", [65536, 100_000, 3 << 20])
def test_large_content_goes_in_batches(step):
    content = os.urandom(3 * BATCH + 12345)
    _, got, sizes = run(body(content), step)
    assert got == content
    assert all(size >= BATCH for size in sizes[:-1]) and len(sizes) >= 2


def test_padding_after_the_boundary_and_an_epilogue_are_accepted():
    raw = body(b"data", epilogue=b"\r\nthe epilogue is ignored\r\n")
    raw = raw.replace(f"--{BOUNDARY}\r\n".encode(), f"--{BOUNDARY} \t\r\n".encode(), 1)
    assert run(raw, 5)[:2] == ("f.bin", b"data")


def test_filename_with_quotes_escaped_and_utf8():
    raw = body(b"x", filename="caf\u00e9 %22q%22.txt")  # sent as UTF-8
    assert run(raw, 9)[0] == "caf\u00e9 %22q%22.txt"


def error(raw: bytes, step: int = 11, content_type: str | None = None) -> ApiError:
    with pytest.raises(ApiError) as caught:
        run(raw, step, content_type)
    return caught.value


@pytest.mark.parametrize(("raw", "status", "text"), [
    (body(b"x", name="upload"), 400, "a file named 'file' (found ['upload'])"),
    (body(b"x", filename=None), 400, "not a file"),
    (body(b"x", filename=""), 400, "needs a filename"),
    (body(b"x")[:-8], 400, "ends before its closing boundary"),
    (body(b"x", extra=b"\r\nContent-Disposition: form-data; name=\"file\"\r\n\r\ny\r\n--" +
          BOUNDARY.encode()), 400, "found more than one part"),
    (body(b"x", extra=b"junk"), 400, "boundary appears inside the part"),
    (b"preamble\r\n" + body(b"x"), 400, "does not start with its boundary"),
    (b"garbage", 400, "does not start with its boundary"),
    (f"--{BOUNDARY}--\r\n".encode(), 400, "found no parts"),
    (f"--{BOUNDARY}\r\n\r\nx\r\n--{BOUNDARY}--".encode(), 400, '"name" must be provided'),
    (f"--{BOUNDARY}\r\nNo colon here\r\n\r\nx\r\n--{BOUNDARY}--".encode(), 400, "malformed"),
    (f"--{BOUNDARY}\r\nX: " .encode() + b"y" * 20000, 400, "headers do not end"),
    (f"--{BOUNDARY}x\r\n".encode(), 400, "no line break after the boundary"),
])
def test_shape_errors(raw, status, text):
    exc = error(raw)
    assert exc.status == status and exc.code == "ValidationErrors" and text in exc.message


def test_content_type_errors():
    assert error(body(b"x"), content_type="multipart/form-data").status == 400
    exc = error(body(b"x"), content_type="application/octet-stream")
    assert exc.status == 406 and "multipart/form-data" in exc.message


def test_a_second_part_is_found_after_the_content_was_consumed():
    """The caller learns of it before it may keep anything (see single_file_part)."""
    second = (b"\r\nContent-Disposition: form-data; name=\"other\"\r\n\r\nyy\r\n--" +
              BOUNDARY.encode())
    exc = error(body(os.urandom(2 * BATCH), extra=second), step=1 << 20)
    assert "more than one part" in exc.message
