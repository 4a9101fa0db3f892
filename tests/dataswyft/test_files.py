"""File API over real HTTP: the three-step upload (start, presigned S3 PUT, complete), what
the S3 stand-in received, expired URLs, incomplete uploads, and streaming of a large file."""

from __future__ import annotations

import json
import secrets
import subprocess
import sys
import textwrap
from pathlib import Path

import httpx
import pytest

from worker.dataswyft import BytesPayload, DataswyftHTTPError, S3Error, decode_claims
from worker.errors import PayloadError, ValidationError

from .conftest import clock_shifted, sandbox_settings

ROOT = Path(__file__).resolve().parents[2]
MiB = 1024 * 1024


def _meta(**extra) -> dict:
    return {"name": f"note-{secrets.token_hex(4)}.txt", "source": "datapost-tests", **extra}


def test_upload_in_three_steps_and_read_content_back(client, alice, mint, request_log):
    content = b"hello PDA\n" * 1000 + secrets.token_bytes(37)
    token = mint(iat_offset=-60)
    ticket = client.start_upload(alice["domain"], token, _meta(
        contentType="text/plain", tags=["datapost", "test"], title="A note"))
    assert ticket.file_id.endswith(".txt") and ticket.content_type == "text/plain"
    assert ticket.metadata["status"] == {"status": "New"} and "contentUrl" not in ticket.metadata
    assert ticket.content_url not in repr(ticket) and ticket.new_token not in repr(ticket)
    assert decode_claims(ticket.new_token).iat > decode_claims(token).iat

    client.put_content(ticket.content_url, BytesPayload(content, chunk_size=4096), "text/plain")
    done = client.complete_upload(alice["domain"], ticket.new_token, ticket.file_id)
    assert (done.status, done.size, done.file_id) == ("Completed", len(content), ticket.file_id)
    assert done.new_token

    fetched = client.get_file(alice["domain"], done.new_token, ticket.file_id)
    assert fetched.status == "Completed" and fetched.metadata["tags"] == ["datapost", "test"]
    stored = httpx.get(f"{alice['url']}/_control/files/{ticket.file_id}/content", timeout=30)
    assert stored.status_code == 200 and stored.content == content

    put = [r for r in request_log.since(target="s3") if r["method"] == "PUT"]
    assert len(put) == 1
    assert "x-amz-server-side-encryption" in put[0]["headers"]
    assert "content-length" in put[0]["headers"] and "transfer-encoding" not in put[0]["headers"]
    assert "x-auth-token" not in put[0]["headers"]


def test_upload_without_content_type_in_metadata(client, alice, mint):
    ticket = client.start_upload(alice["domain"], mint(), _meta())
    assert ticket.content_type is None
    client.put_content(ticket.content_url, BytesPayload(b"\x00\x01binary"), None)
    done = client.complete_upload(alice["domain"], ticket.new_token, ticket.file_id)
    assert done.size == 8


def test_content_type_other_than_signed_is_refused_by_s3(client, alice, mint):
    ticket = client.start_upload(alice["domain"], mint(), _meta(contentType="text/plain"))
    with pytest.raises(S3Error) as info:
        client.put_content(ticket.content_url, BytesPayload(b"x"), "application/json")
    err = info.value
    assert err.status == 403 and err.code == "SignatureDoesNotMatch" and not err.expired
    assert "X-Amz-Signature" not in str(err) and ticket.content_url not in str(err)


def test_expired_presigned_url_is_s3_403(client, alice, mint, sandbox):
    ticket = client.start_upload(alice["domain"], mint(), _meta(contentType="text/plain"))
    with clock_shifted(sandbox, 600), pytest.raises(S3Error) as info:
        client.put_content(ticket.content_url, BytesPayload(b"too late"), "text/plain")
    err = info.value
    assert (err.status, err.code) == (403, "AccessDenied")
    assert err.expired and "expired" in str(err).lower() and not err.transient


def test_complete_before_put_is_an_incomplete_upload(client, alice, mint):
    ticket = client.start_upload(alice["domain"], mint(), _meta())
    with pytest.raises(DataswyftHTTPError) as info:
        client.complete_upload(alice["domain"], ticket.new_token, ticket.file_id)
    err = info.value
    assert err.status == 400 and err.incomplete_upload and not err.duplicate
    assert err.new_token and "File not available" in err.readable


def test_unknown_file_is_404_not_hat_unavailable(client, alice, mint):
    with pytest.raises(DataswyftHTTPError) as info:
        client.get_file(alice["domain"], mint(), "no-such-file.txt")
    assert info.value.status == 404 and not info.value.hat_unavailable and info.value.new_token


def test_put_refuses_empty_and_lying_payloads(client, alice, mint):
    ticket = client.start_upload(alice["domain"], mint(), _meta())
    with pytest.raises(ValidationError, match="empty"):
        client.put_content(ticket.content_url, BytesPayload(b""), None)

    class Liar:
        size = 10

        def chunks(self):
            yield b"12345"

    with pytest.raises(PayloadError):
        client.put_content(ticket.content_url, Liar(), None)


def test_put_refuses_odd_upload_urls(client, http):
    from worker.dataswyft import DataswyftClient

    real = DataswyftClient(http, scheme="https")  # no sandbox: https and public hosts only
    for url in ("http://s3.example.com/k?X-Amz-Signature=abc", "https://127.0.0.1/k?a=b",
                "https://user:pw@s3.example.com/k", "ftp://s3.example.com/k"):
        with pytest.raises(ValidationError) as info:
            real.put_content(url, BytesPayload(b"x"), None)
        assert "abc" not in str(info.value) and "pw" not in str(info.value)
    with pytest.raises(ValidationError, match="canonical"):
        client.put_content('http://localhost:1/k?a="b', BytesPayload(b"x"), None)


STREAM_SCRIPT = textwrap.dedent("""
    import hashlib, json, resource, sys
    from worker.dataswyft import (BytesPayload, DataswyftClient, DomainPolicy,
                                  build_http_client)

    cfg = json.loads(sys.argv[1])

    class Synthetic:
        '''size bytes in 1 MiB blocks made on the fly: never all in memory.'''
        def __init__(self, size):
            self.size = size
        def chunks(self):
            left, i = self.size, 0
            while left:
                block = (hashlib.sha256(i.to_bytes(8, "big")).digest() * 32768)[:left]
                left -= len(block)
                i += 1
                yield block

    policy = DomainPolicy(allowed_suffixes=("localhost",), sandbox_mode=True)
    with build_http_client() as http:
        client = DataswyftClient(http, scheme="http", policy=policy)
        token = cfg["token"]

        def upload(payload, name):
            global token
            meta = {"name": name, "source": "datapost-stream", "contentType": "application/octet-stream"}
            ticket = client.start_upload(cfg["domain"], token, meta)
            client.put_content(ticket.content_url, payload, ticket.content_type)
            done = client.complete_upload(cfg["domain"], ticket.new_token, ticket.file_id)
            token = done.new_token
            return done

        upload(BytesPayload(b"warm-up"), cfg["name"] + "-warm.bin")
        big = Synthetic(cfg["size"])
        digest = hashlib.sha256()
        for chunk in big.chunks():
            digest.update(chunk)
        baseline = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        done = upload(big, cfg["name"] + ".bin")
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"file_id": done.file_id, "size": done.size, "sha256": digest.hexdigest(),
                      "baseline_kib": baseline, "peak_kib": peak}))
""")


def test_50_mib_upload_is_streamed_with_bounded_memory(alice, mint, sandbox):
    size = 50 * MiB
    cfg = {"domain": alice["domain"], "token": mint(), "size": size,
           "name": f"big-{secrets.token_hex(4)}"}
    with sandbox_settings(sandbox, keep_content=False):
        proc = subprocess.run([sys.executable, "-c", STREAM_SCRIPT, json.dumps(cfg)], cwd=ROOT,
                              capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["size"] == size
    files = httpx.get(alice["url"] + "/_control/files", timeout=30).json()["files"]
    stored = next(f for f in files if f["fileId"] == out["file_id"])
    assert stored["size"] == size and stored["sha256"] == out["sha256"]
    grown = (out["peak_kib"] - out["baseline_kib"]) / 1024
    print(f"50 MiB upload: peak RSS {out['peak_kib'] / 1024:.1f} MiB, grew by {grown:.1f} MiB")
    assert grown < 30, f"peak RSS grew by {grown:.1f} MiB during a 50 MiB upload"

