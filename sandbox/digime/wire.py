"""Request-shape checks shared by the API endpoints: Accept, Content-Type, JSON bodies.

The v-next mock answers a bad Accept or Content-Type with 406 ValidationErrors; the same
is done here. Headers the SDK leaves out (no Accept on the push, no Content-Type on the
token call and on pre-16.1.3 pushes) are always tolerated.
"""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request

from .errors import validation

JSON_ACCEPTS = ("application/json", "application/*", "*/*")


def media_type(request: Request) -> str | None:
    raw = request.headers.get("content-type")
    if raw is None or not raw.strip():
        return None
    return raw.split(";", 1)[0].strip().lower()


def check_accept_json(request: Request) -> None:
    """An Accept header, when sent, must allow a JSON answer."""
    accept = request.headers.get("accept")
    if accept is None or not accept.strip():
        return
    ranges = [part.split(";", 1)[0].strip().lower() for part in accept.split(",")]
    if not any(r in JSON_ACCEPTS for r in ranges):
        raise validation(f"Accept must allow application/json (got {accept[:60]!r})", status=406)


async def read_json_object(request: Request, *, what: str) -> dict[str, Any]:
    """A JSON object body, or `{}` for an absent/empty body."""
    raw = await request.body()
    if not raw.strip():
        return {}
    kind = media_type(request)
    if kind not in (None, "application/json"):
        raise validation(f"{what} body must be application/json (got {kind})", status=406)
    try:
        data = json.loads(raw)
    except (UnicodeDecodeError, ValueError):
        raise validation(f"{what} body is not valid JSON") from None
    if not isinstance(data, dict):
        raise validation(f"{what} body must be a JSON object")
    return data


async def require_empty_body(request: Request, *, what: str) -> None:
    """oauth/token takes every parameter in the JWT; a body of `{}` is tolerated, nothing more."""
    raw = (await request.body()).strip()
    if raw and raw != b"{}":
        raise validation(f"{what} takes no body: its parameters travel in the JWT claims")
