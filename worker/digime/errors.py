"""digi.me client errors, and the parsing that turns a response into one.

Every message here is built from the status, the server's code and a sanitised server
message: no token, key, nonce-bearing JWT or payload byte ever reaches `str(err)`, because
these errors end up in job records and log lines.
"""

from __future__ import annotations

import email.utils
import json
import math
import re
import time
from collections.abc import Iterable

import httpx

from ..errors import DatapostError
from ..transport import TransportFailure, strip_urls, transport_kind

MAX_MESSAGE = 300
_JWT = re.compile(r"eyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*")
_PEM = re.compile(r"-----BEGIN [A-Z ]+-----.*?(-----END [A-Z ]+-----|$)", re.S)
_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")


class DigimeError(DatapostError):
    """Base class for everything the digi.me client raises on purpose."""


class DigimeHTTPError(DigimeError):
    """digi.me answered with a non-2xx status.

    `code` is digi.me's error code (`InvalidToken`, `InvalidClient`, …) from the JSON body or
    the `X-Error-Code` header, None when the response carried neither. `retry_after` is in
    seconds (from `Retry-After`, seconds or HTTP-date), None when absent or unreadable.
    """

    def __init__(self, status: int, code: str | None, message: str, reference: str | None,
                 retry_after: float | None, *, operation: str = "") -> None:
        self.status = status
        self.code = code
        self.message = message
        self.reference = reference
        self.retry_after = retry_after
        self.operation = operation
        text = f"digi.me {operation + ' ' if operation else ''}answered {status}"
        if code:
            text += f" {code}"
        if message:
            text += f": {message}"
        if reference:
            text += f" (reference {reference})"
        if retry_after is not None:
            text += f"; retry after {retry_after:g} s"
        super().__init__(text)

    def __reduce__(self):  # picklable across processes with keyword arguments intact
        return (_rebuild_http_error, (self.status, self.code, self.message, self.reference,
                                      self.retry_after, self.operation))


def _rebuild_http_error(*args) -> DigimeHTTPError:
    status, code, message, reference, retry_after, operation = args
    return DigimeHTTPError(status, code, message, reference, retry_after, operation=operation)


class DigimeTransportError(TransportFailure, DigimeError):
    """The request did not complete (see TransportFailure for `kind`)."""


class TokenVerificationError(DigimeError):
    """A digi.me response token failed verification (header, pinned jku, key, signature, time)."""


class DigimeProtocolError(DigimeError):
    """digi.me answered 2xx, but not with the documented body."""


class InvalidPublicKey(DigimeError):
    """The postbox public key is unusable: not RSA, not parseable, or smaller than 2048 bits."""


def is_invalid_token(err: BaseException) -> bool:
    """True when a refresh may help: 401 `InvalidToken`, or a 401 with no error code at all
    (the SDK refreshes on those too, §6.2)."""
    return (isinstance(err, DigimeHTTPError) and err.status == 401
            and (err.code is None or err.code == "InvalidToken"))


# -- building errors ------------------------------------------------------------------------

def sanitize(text: object, secrets: Iterable[str | None] = ()) -> str:
    """Text safe for an exception message: known secrets, JWTs and PEM blocks cut out,
    control characters folded, at most MAX_MESSAGE characters."""
    out = text if isinstance(text, str) else str(text)
    for secret in secrets:
        if secret and len(secret) >= 4:
            out = out.replace(secret, "***")
    out = _PEM.sub("[PEM]", out)
    out = _JWT.sub("[JWT]", out)
    out = _CONTROL.sub(" ", out).strip()
    return out if len(out) <= MAX_MESSAGE else out[:MAX_MESSAGE] + "…"


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Retry-After as seconds from now: delta-seconds or an HTTP-date; None if unreadable."""
    if value is None:
        return None
    value = value.strip()
    if not value:
        return None
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None or when.tzinfo is None:
        return None
    delta = when.timestamp() - (time.time() if now is None else now)
    return max(0.0, delta) if math.isfinite(delta) else None


def _str_or_none(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def http_error(response: httpx.Response, *, operation: str = "",
               secrets: Iterable[str | None] = ()) -> DigimeHTTPError:
    """Parse a non-2xx response: nested `{error:{code,message,reference}}`, flat
    `{error, message}` (storage API), then the `X-Error-*` headers for what is still missing."""
    secrets = tuple(secrets)
    code = message = reference = None
    try:
        body = json.loads(response.content) if response.content else None
    except (ValueError, UnicodeDecodeError):
        body = None
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict):
            code = _str_or_none(error.get("code"))
            message = _str_or_none(error.get("message"))
            reference = _str_or_none(error.get("reference"))
        elif isinstance(error, str):
            code = _str_or_none(error)
        message = message or _str_or_none(body.get("message"))
    headers = response.headers
    code = code or _str_or_none(headers.get("x-error-code"))
    message = message or _str_or_none(headers.get("x-error-message"))
    reference = reference or _str_or_none(headers.get("x-error-reference"))
    if message is None:
        message = response.reason_phrase or ""
    return DigimeHTTPError(
        response.status_code,
        sanitize(code, secrets)[:80] if code else None,
        sanitize(message, secrets),
        sanitize(reference, secrets)[:80] if reference else None,
        parse_retry_after(headers.get("retry-after")),
        operation=operation,
    )


def transport_error(exc: httpx.TransportError, *, operation: str = "",
                    secrets: Iterable[str | None] = ()) -> DigimeTransportError:
    """Wrap an httpx failure; the message names the kind and the operation, never the URL."""
    kind = transport_kind(exc)
    detail = sanitize(strip_urls(str(exc)), secrets) or type(exc).__name__
    return DigimeTransportError(
        f"digi.me {operation + ' ' if operation else ''}failed ({kind}, {type(exc).__name__}): "
        f"{detail}", kind=kind, operation=operation)

