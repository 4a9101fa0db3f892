"""What both provider clients say about a failed HTTP exchange, without leaking URLs' queries
(presigned URLs and callback codes are credentials)."""

from __future__ import annotations

import re

import httpx

from .errors import DatapostError

_KINDS: tuple[tuple[type[httpx.TransportError], str], ...] = (
    (httpx.TimeoutException, "timeout"),
    (httpx.ConnectError, "connect"),
    (httpx.ReadError, "read"),
    (httpx.WriteError, "write"),
    (httpx.RemoteProtocolError, "protocol"),
)


def transport_kind(exc: httpx.TransportError) -> str:
    """timeout, connect, read, write, protocol or other."""
    return next((name for cls, name in _KINDS if isinstance(exc, cls)), "other")


def strip_urls(text: str) -> str:
    """Keep scheme://host/path of any URL in `text`; drop its query and fragment, and any bare
    `X-Amz-…=` parameter."""
    text = re.sub(r"(https?://[^\s?#'\"]*)[?#][^\s'\"]*", r"\1?…", text)
    return re.sub(r"(X-Amz-[A-Za-z-]+=)[^\s&'\"]*", r"\1…", text)


class TransportFailure(DatapostError):
    """The request did not complete: timeout, refused or reset connection, broken HTTP.
    `kind` is one of "timeout", "connect", "read", "write", "protocol", "other". Each
    provider's transport error derives from this and from its own error base."""

    def __init__(self, message: str, *, kind: str = "other", operation: str = "") -> None:
        self.kind = kind
        self.operation = operation
        super().__init__(message)

    @property
    def is_timeout(self) -> bool:
        return self.kind == "timeout"

    def __reduce__(self):
        return (_rebuild, (type(self), str(self), self.kind, self.operation))


def _rebuild(cls: type[TransportFailure], message: str, kind: str,
             operation: str) -> TransportFailure:
    return cls(message, kind=kind, operation=operation)
