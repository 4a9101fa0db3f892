"""An in-process stand-in for the S3 bucket behind the HAT's File Storage API.

Presigned URLs live on the PDA's own host under `/_s3/<pda-domain>/<fileId>`. They are
HMAC-signed over method, key, host, date, lifetime and the signed headers
(`x-amz-server-side-encryption`, and `content-type` when the metadata fixed one), so a
missing SSE header or a different Content-Type fails like S3 does: 403 with an XML error.
Bodies stream to disk; a 1 GiB upload never sits in memory.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import os
import secrets
import shutil
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, urlencode
from xml.sax.saxutils import escape

from starlette.requests import ClientDisconnect, Request
from starlette.responses import FileResponse, Response

PRESIGN_SECONDS = 300
MAX_SINGLE_PUT = 5 * 1024**3  # S3's single-PUT limit
SSE_HEADER = "x-amz-server-side-encryption"
_DATE_FMT = "%Y%m%dT%H%M%SZ"


@dataclass
class ObjectInfo:
    key: str
    size: int
    sha256: str
    etag: str
    content_type: str | None
    path: Path | None  # None when content is not kept


class ObjectStore:
    """Objects on disk, one file per key; metadata in memory."""

    def __init__(self, root: Path, *, keep_content: bool = True) -> None:
        self.root = root
        self.keep_content = keep_content
        self.root.mkdir(parents=True, exist_ok=True)
        self.objects: dict[str, ObjectInfo] = {}

    def _path(self, key: str) -> Path:
        return self.root / quote(key, safe="")

    async def put(self, key: str, request: Request, content_type: str | None) -> ObjectInfo:
        """Stream the request body to disk; replaces any previous object atomically."""
        sha, md5, size = hashlib.sha256(), hashlib.md5(usedforsecurity=False), 0
        tmp = self.root / f".upload-{secrets.token_hex(8)}"
        try:
            with open(tmp, "wb") as out:
                async for chunk in request.stream():
                    if not chunk:
                        continue
                    sha.update(chunk)
                    md5.update(chunk)
                    size += len(chunk)
                    if self.keep_content:
                        out.write(chunk)
            final: Path | None = None
            if self.keep_content:
                final = self._path(key)
                os.replace(tmp, final)
        finally:
            if tmp.exists():
                tmp.unlink()
        info = ObjectInfo(key, size, sha.hexdigest(), f'"{md5.hexdigest()}"', content_type, final)
        self.objects[key] = info
        return info

    def head(self, key: str) -> ObjectInfo | None:
        return self.objects.get(key)

    def delete(self, key: str) -> None:
        info = self.objects.pop(key, None)
        if info is not None and info.path is not None and info.path.exists():
            info.path.unlink()

    def clear(self) -> None:
        self.objects.clear()
        shutil.rmtree(self.root, ignore_errors=True)
        self.root.mkdir(parents=True, exist_ok=True)


class Presigner:
    """Signs and checks presigned URLs (a private HMAC key; SigV4-looking query string)."""

    def __init__(self, secret: bytes | None = None) -> None:
        self._secret = secret or secrets.token_bytes(32)

    def _sign(self, method: str, key: str, host: str, amz_date: str, expires: str,
              signed: dict[str, str]) -> str:
        canonical = "\n".join([method, key, host.lower(), amz_date, expires,
                               *(f"{k}:{v}" for k, v in sorted(signed.items()))])
        return hmac.new(self._secret, canonical.encode(), hashlib.sha256).hexdigest()

    def url(self, base_url: str, key: str, method: str, now: float, *,
            content_type: str | None = None, expires: int = PRESIGN_SECONDS) -> str:
        host = base_url.split("://", 1)[-1]
        amz_date = dt.datetime.fromtimestamp(int(now), dt.UTC).strftime(_DATE_FMT)
        signed = {"host": host.lower()}
        if method == "PUT":
            signed[SSE_HEADER] = "AES256"
            if content_type is not None:
                signed["content-type"] = content_type
        query = {
            "X-Amz-Algorithm": "AWS4-HMAC-SHA256",
            "X-Amz-Credential": f"SANDBOX/{amz_date[:8]}/eu-west-1/s3/aws4_request",
            "X-Amz-Date": amz_date,
            "X-Amz-Expires": str(expires),
            "X-Amz-SignedHeaders": ";".join(sorted(signed)),
            "X-Amz-Signature": self._sign(method, key, host, amz_date, str(expires), signed),
        }
        return f"{base_url}/_s3/{key}?{urlencode(query)}"

    def check(self, request: Request, method: str, key: str, now: float) -> Response | None:
        """None when the request carries a valid, unexpired signature; else S3's 403."""
        q = request.query_params
        amz_date, expires = q.get("X-Amz-Date"), q.get("X-Amz-Expires")
        sig = q.get("X-Amz-Signature")
        names = (q.get("X-Amz-SignedHeaders") or "").split(";")
        if not (amz_date and expires and sig and expires.isdigit()):
            return s3_error(403, "AccessDenied", "Query-string authentication requires the "
                            "X-Amz-Signature, X-Amz-Date and X-Amz-Expires parameters")
        host = request.headers.get("host", "")
        signed = {n: (host.lower() if n == "host" else request.headers.get(n, ""))
                  for n in names if n}
        if "host" not in signed or (method == "PUT" and SSE_HEADER not in signed):
            return s3_error(403, "SignatureDoesNotMatch", "The request signature we calculated "
                            "does not match the signature you provided.")
        expected = self._sign(method, key, host, amz_date, expires, signed)
        if not hmac.compare_digest(expected, sig):
            return s3_error(403, "SignatureDoesNotMatch", "The request signature we calculated "
                            "does not match the signature you provided. Check your key and "
                            "signing method.")
        try:
            start = dt.datetime.strptime(amz_date, _DATE_FMT).replace(tzinfo=dt.UTC).timestamp()
        except ValueError:
            return s3_error(403, "AccessDenied", "X-Amz-Date must be in the ISO8601 Long Format")
        if now >= start + int(expires):
            return s3_error(403, "AccessDenied", "Request has expired")
        return None


def s3_error(status: int, code: str, message: str) -> Response:
    body = ('<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>' + escape(code)
            + "</Code><Message>" + escape(message) + "</Message><RequestId>"
            + secrets.token_hex(8).upper() + "</RequestId></Error>")
    return Response(body, status_code=status, media_type="application/xml")


async def handle(request: Request, objects: ObjectStore, presigner: Presigner,
                 now: float) -> Response:
    """PUT or GET one object through a presigned URL."""
    key = request.url.path[len("/_s3/"):]
    if "/" not in key or key.startswith("/") or ".." in key.split("/"):
        return s3_error(400, "InvalidURI", "Couldn't parse the specified URI.")
    method = request.method
    if method not in ("PUT", "GET"):
        return s3_error(405, "MethodNotAllowed",
                        "The specified method is not allowed against this resource.")
    denied = presigner.check(request, method, key, now)
    if denied is not None:
        return denied
    if method == "PUT":
        length = request.headers.get("content-length", "")
        if length.isdigit() and int(length) > MAX_SINGLE_PUT:
            return s3_error(400, "EntityTooLarge",
                            "Your proposed upload exceeds the maximum allowed size")
        try:
            info = await objects.put(key, request, request.headers.get("content-type"))
        except ClientDisconnect:
            return s3_error(400, "IncompleteBody", "You did not provide the number of bytes "
                            "specified by the Content-Length HTTP header")
        return Response(b"", status_code=200, headers={"ETag": info.etag})
    info = objects.head(key)
    if info is None or info.path is None or not info.path.exists():
        return s3_error(404, "NoSuchKey", "The specified key does not exist.")
    return FileResponse(info.path, media_type=info.content_type or "application/octet-stream",
                        headers={"ETag": info.etag})
