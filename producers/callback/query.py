"""Strict query parsing for callbacks: every parameter at most once, sizes bounded."""

from __future__ import annotations

from urllib.parse import parse_qsl

from starlette.requests import Request

MAX_QUERY = 16 * 1024


class BadCallback(ValueError):
    """The provider's redirect is malformed; the message is safe to show."""


def single_params(request: Request) -> dict[str, str]:
    raw = request.scope.get("query_string", b"")
    if len(raw) > MAX_QUERY:
        raise BadCallback("The address is too long.")
    try:
        pairs = parse_qsl(raw.decode("utf-8"), keep_blank_values=True, strict_parsing=False,
                          max_num_fields=50)
    except (UnicodeDecodeError, ValueError):
        raise BadCallback("The address could not be read.") from None
    params: dict[str, str] = {}
    for name, value in pairs:
        if name in params:
            raise BadCallback(f"The parameter {name!r} appears more than once.")
        params[name] = value
    return params


def need(params: dict[str, str], *names: str) -> list[str]:
    missing = [n for n in names if not params.get(n)]
    if missing:
        raise BadCallback(f"The provider's answer lacks {', '.join(missing)}.")
    return [params[n] for n in names]
