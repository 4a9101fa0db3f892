"""Dataswyft client errors, and the parsing that turns a response into one.

These errors end up in job records and log lines, so no message carries a token, a payload
byte or a presigned URL's query (that query is an S3 credential). A PDA renews the token even
on 4xx answers (403 included); the renewed token rides on `DataswyftHTTPError.new_token`,
which is never part of the message.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterable
from typing import Any

import httpx

from ..digime.errors import parse_retry_after, sanitize
from ..errors import DatapostError
from ..transport import TransportFailure, strip_urls, transport_kind

_DUPLICATE_CAUSES = ("Duplicate data", "Could not insert data - Duplicate data")


class DataswyftError(DatapostError):
    """Base class for everything the Dataswyft client raises on purpose."""


class DataswyftHTTPError(DataswyftError):
    """A PDA answered with a non-2xx status.

    Framework envelope `{"error": <title>, "message": <detail>}` → title, message; controller
    envelope `{"message": <title>, "cause": <detail>}` → title, cause. HTML and empty bodies
    give the status's reason as title. `new_token` is the renewed `X-Auth-Token` the answer
    carried (None on 401 and on errors before authentication): store it, the old one is stale.
    """

    def __init__(self, status: int, title: str, message: str | None, cause: str | None,
                 new_token: str | None, retry_after: float | None, *,
                 operation: str = "") -> None:
        self.status = status
        self.title = title
        self.message = message
        self.cause = cause
        self.new_token = new_token
        self.retry_after = retry_after
        self.operation = operation
        super().__init__(self.readable)

    @property
    def detail(self) -> str | None:
        return self.cause or self.message

    @property
    def readable(self) -> str:
        """One line for a job record: who answered what, and the PDA's reason."""
        text = f"Dataswyft {self.operation + ' ' if self.operation else ''}answered {self.status}"
        if self.title:
            text += f" {self.title}"
        if self.detail and self.detail != self.title:
            text += f": {self.detail}"
        if self.retry_after is not None:
            text += f"; retry after {self.retry_after:g} s"
        return text

    @property
    def duplicate(self) -> bool:
        """The PDA already holds identical data (its PDA-wide content hash)."""
        return self.status == 400 and any((self.cause or "").startswith(p) for p in _DUPLICATE_CAUSES)

    @property
    def hat_unavailable(self) -> bool:
        """Unknown host, or the PDA is starting or lost its database: transient."""
        return self.status == 404 and "HAT unavailable" in (self.message, self.title)

    @property
    def not_authenticated(self) -> bool:
        return self.status == 401

    @property
    def forbidden(self) -> bool:
        return self.status == 403

    @property
    def incomplete_upload(self) -> bool:
        """`complete` found no (or an empty) object in S3: the content must be PUT again."""
        return self.status == 400 and "File not available" in (self.title, self.message)

    @property
    def transient(self) -> bool:
        """Worth retrying later as it is: 5xx, 429, or `404 HAT unavailable`."""
        return self.status >= 500 or self.status == 429 or self.hat_unavailable

    def __repr__(self) -> str:
        return f"DataswyftHTTPError({self.readable!r})"

    def __reduce__(self):  # picklable with the keyword argument intact
        return (_rebuild_http_error, (self.status, self.title, self.message, self.cause,
                                      self.new_token, self.retry_after, self.operation))


def _rebuild_http_error(*args: Any) -> DataswyftHTTPError:
    *positional, operation = args
    return DataswyftHTTPError(*positional, operation=operation)


class S3Error(DataswyftError):
    """The presigned S3 PUT failed; `code` is S3's error code (`AccessDenied`,
    `SignatureDoesNotMatch`, …) from the XML body, None when the body had none."""

    def __init__(self, status: int, code: str | None, message: str) -> None:
        self.status = status
        self.code = code
        self.message = message
        text = f"S3 upload answered {status}"
        if code:
            text += f" {code}"
        if message:
            text += f": {message}"
        super().__init__(text)

    @property
    def expired(self) -> bool:
        """The presigned URL outlived its 5 minutes: start a new upload."""
        return self.status == 403 and "expired" in self.message.lower()

    @property
    def transient(self) -> bool:
        return self.status >= 500 or self.status == 429

    def __reduce__(self):
        return (S3Error, (self.status, self.code, self.message))


class DataswyftTransportError(TransportFailure, DataswyftError):
    """The request did not complete (see TransportFailure for `kind`)."""


class DataswyftProtocolError(DataswyftError):
    """A PDA answered 2xx, but not with the documented body. `new_token` is the renewed token
    that answer carried, if any (never in the message)."""

    def __init__(self, message: str, *, new_token: str | None = None) -> None:
        self.new_token = new_token
        super().__init__(message)

    def __reduce__(self):
        return (_rebuild_protocol_error, (str(self), self.new_token))


def _rebuild_protocol_error(message: str, new_token: str | None) -> DataswyftProtocolError:
    return DataswyftProtocolError(message, new_token=new_token)


class TokenError(DataswyftError):
    """A Dataswyft token is malformed or fails verification; the message says which check."""


# -- building errors ------------------------------------------------------------------------

def _text(value: object) -> str | None:
    """A readable one-line string for an envelope field (the framework's `message` may be a
    JSON object of validation errors: `{"obj[0].endpoint": [{"msg": ["error.path.missing"]}]}`)."""
    if value is None or value == "":
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        parts = []
        for key, errors in value.items():
            msgs = []
            for item in errors if isinstance(errors, list) else [errors]:
                msg = item.get("msg") if isinstance(item, dict) else item
                msgs.extend(str(m) for m in (msg if isinstance(msg, list) else [msg]))
            parts.append(f"{key}: {', '.join(msgs)}" if msgs else str(key))
        return "; ".join(parts)
    return json.dumps(value, separators=(",", ":"), default=str)


def _html_text(body: str, pattern: str) -> str | None:
    found = re.search(pattern, body, re.I | re.S)
    if not found:
        return None
    text = html.unescape(re.sub(r"<[^>]+>", " ", found.group(1)))
    return re.sub(r"\s+", " ", text).strip() or None


def _parse_body(response: httpx.Response) -> tuple[str | None, str | None, str | None]:
    """(title, message, cause) from either JSON envelope, an HTML page or plain text."""
    raw = response.content
    if not raw.strip():
        return None, None, None
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError, RecursionError):
        body = None
    if isinstance(body, dict):
        if isinstance(body.get("error"), str):
            return body["error"], _text(body.get("message")), None
        if "cause" in body or isinstance(body.get("message"), str):
            return _text(body.get("message")), None, _text(body.get("cause"))
        return None, _text(body), None
    text = raw.decode("utf-8", "replace")
    if "<html" in text[:500].lower() or "<!doctype" in text[:500].lower():
        title = _html_text(text, r"<title[^>]*>(.*?)</title>") or _html_text(text, r"<h1[^>]*>(.*?)</h1>")
        detail = (_html_text(text, r"<p[^>]*id=[\"']detail[\"'][^>]*>(.*?)</p>")
                  or _html_text(text, r"<p[^>]*>(.*?)</p>"))
        return title, detail, None
    return None, text[:500], None


def http_error(response: httpx.Response, *, operation: str = "",
               secrets: Iterable[str | None] = ()) -> DataswyftHTTPError:
    """Parse a non-2xx PDA answer into a DataswyftHTTPError carrying the renewed token."""
    new_token = response.headers.get("x-auth-token") or None
    secrets = (*secrets, new_token)
    title, message, cause = _parse_body(response)
    title = title or response.reason_phrase or f"HTTP {response.status_code}"

    def clean(value: str | None) -> str | None:
        return sanitize(value, secrets) or None if value is not None else None

    return DataswyftHTTPError(response.status_code, clean(title) or "", clean(message),
                              clean(cause), new_token,
                              parse_retry_after(response.headers.get("retry-after")),
                              operation=operation)


def s3_error(response: httpx.Response) -> S3Error:
    """Parse S3's XML error (`<Error><Code>…</Code><Message>…</Message>…`); only Code and
    Message are read (S3 may echo the canonical request, which names the credential)."""
    text = response.content[:64 * 1024].decode("utf-8", "replace")

    def element(name: str) -> str | None:
        found = re.search(rf"<{name}>(.*?)</{name}>", text, re.S)
        return html.unescape(found.group(1)).strip() if found else None

    code = element("Code")
    message = element("Message") or response.reason_phrase or ""
    return S3Error(response.status_code, sanitize(code)[:80] if code else None,
                   strip_urls(sanitize(message)))


def transport_error(exc: httpx.TransportError, *, operation: str = "",
                    secrets: Iterable[str | None] = ()) -> DataswyftTransportError:
    """Wrap an httpx failure; the message names the kind and the operation, never a URL's query."""
    kind = transport_kind(exc)
    detail = sanitize(strip_urls(str(exc)), secrets) or type(exc).__name__
    return DataswyftTransportError(
        f"Dataswyft {operation + ' ' if operation else ''}failed ({kind}, {type(exc).__name__}): "
        f"{detail}", kind=kind, operation=operation)

