"""What both provider clients say about a failed HTTP exchange, without leaking URLs' queries
(presigned URLs and callback codes are credentials)."""

from __future__ import annotations

import re

import httpx

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
