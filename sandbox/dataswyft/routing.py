"""A small regex router that follows Play's order of work for each PDA request.

Order (Play action composition, as the HAT runs it): match the route (no match: GET falls to
the dashboard's index.html, anything else is 404 Handler Not Found); parse the body (415,
413, 400 come before authentication); authenticate (401, no renewal); run the handler;
attach the renewed token to every answer except 401 and uncaught 500s.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response

from . import errors
from .auth import extract_token, has_role
from .errors import ApiError
from .tokens import Verified

if TYPE_CHECKING:
    from .state import DataswyftState, Pda

log = logging.getLogger("sandbox.dataswyft")
MAX_JSON_BYTES = 10 * 1024 * 1024  # play.http.parser.maxMemoryBuffer = 10M
API = r"/api/(?:v2\.6|v2\.0|v2)"
API26 = r"/api/v2\.6"
NS = r"(?P<ns>[0-9a-z-]+)"
EP = r"(?P<ep>[0-9a-z-/]+)"


@dataclass
class Call:
    """One request as a handler sees it."""

    request: Request
    state: DataswyftState
    pda: Pda
    params: dict[str, str]
    body: Any = None
    who: Verified | None = None

    @property
    def now(self) -> float:
        return self.state.now()

    def require(self, role: str, detail: str | None = None) -> None:
        """403 Access Denied (framework envelope) unless the caller holds the role."""
        if not has_role(self.state, self.pda, self.who, role, detail):
            raise ApiError(errors.forbidden(self.request))

    def allowed(self, role: str, detail: str | None = None) -> bool:
        return has_role(self.state, self.pda, self.who, role, detail)


Handler = Callable[[Call], Awaitable[Response]]


@dataclass
class Route:
    method: str
    pattern: re.Pattern[str]
    handler: Handler
    body: bool = False  # parse a JSON body before authenticating
    auth: str = "required"  # required | optional | none


@dataclass
class Router:
    routes: list[Route] = field(default_factory=list)

    def add(self, method: str, pattern: str, handler: Handler, *, body: bool = False,
            auth: str = "required") -> None:
        self.routes.append(Route(method, re.compile(pattern), handler, body, auth))

    def match(self, method: str, path: str) -> tuple[Route, dict[str, str]] | None:
        for route in self.routes:
            if route.method == method:
                m = route.pattern.fullmatch(path)
                if m:
                    return route, {k: v for k, v in m.groupdict().items() if v is not None}
        return None


def _reject_constant(name: str) -> Any:
    raise ValueError(f"Non-standard token '{name}'")


def _finite_float(text: str) -> float:
    value = float(text)
    if value in (float("inf"), float("-inf")):
        raise ValueError(f"Numeric value ({text}) out of range")
    return value


async def read_json(request: Request) -> Any:
    """Play's `parse.json`: 415 for a non-JSON type, 413 past 10 MiB, 400 for bad JSON."""
    ctype = request.headers.get("content-type", "")
    media = ctype.split(";", 1)[0].strip().lower()
    if media not in ("application/json", "text/json"):
        raise ApiError(errors.unsupported_media_type(ctype), renew=False)
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > MAX_JSON_BYTES:
        raise ApiError(errors.entity_too_large(), renew=False)
    chunks, size = [], 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > MAX_JSON_BYTES:
                raise ApiError(errors.entity_too_large(), renew=False)
            chunks.append(chunk)
    except ClientDisconnect:
        raise ApiError(errors.bad_request("Invalid Json: incomplete body"), renew=False) from None
    raw = b"".join(chunks)
    if not raw.strip():
        raise ApiError(errors.bad_request(
            "Invalid Json: No content to map due to end-of-input"), renew=False)
    try:
        return json.loads(raw.decode("utf-8"), parse_constant=_reject_constant,
                          parse_float=_finite_float)
    except UnicodeDecodeError as exc:
        raise ApiError(errors.bad_request(f"Invalid Json: Invalid UTF-8 ({exc.reason})"),
                       renew=False) from None
    except (ValueError, RecursionError) as exc:
        raise ApiError(errors.bad_request(f"Invalid Json: {exc}"), renew=False) from None


async def run(router: Router, request: Request, state: DataswyftState, pda: Pda,
              fallback: Callable[[Request], Response]) -> Response:
    """Dispatch one PDA request through the order described in the module docstring."""
    found = router.match(request.method, request.url.path)
    if found is None:
        if request.method == "GET":
            return fallback(request)
        return errors.handler_not_found(request.method, request.url.path)
    route, params = found
    call = Call(request, state, pda, params)
    try:
        if route.body:
            call.body = await read_json(request)
    except ApiError as exc:
        return exc.response
    if route.auth != "none":
        token = extract_token(request)
        call.who = pda.tokens.verify(token, state.now()) if token else None
        if call.who is None and route.auth == "required":
            return errors.not_authenticated(request)
    renew = True
    try:
        response = await route.handler(call)
    except ApiError as exc:
        response, renew = exc.response, exc.renew
    except Exception:  # never a stack trace to the client
        log.exception("dataswyft handler failed: %s %s", request.method, request.url.path)
        response, renew = errors.server_error(), False
    if call.who is not None and renew and response.status_code != 401:
        response.headers["X-Auth-Token"] = pda.tokens.renew(call.who, state.now())
    return response
