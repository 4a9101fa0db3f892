"""digi.me error responses: one body shape and three headers, for every failure.

The released SDK reads `{"error": {code, message, reference}}` from the body; the v-next
client reads only the `X-Error-*` headers (HEAD responses have no body). Both are sent.
"""

from __future__ import annotations

import functools
import logging
import secrets
from collections.abc import Awaitable, Callable

from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response

log = logging.getLogger("sandbox.digime")

# Messages quoted from the protocol notes (§9.2); `{}` takes the offending value.
INVALID_CLIENT = "The client_id ({}) is invalid"
INVALID_REDIRECT = "The redirect_uri ({}) is invalid"
TOKEN_INVALID = "The token ({}) is invalid"
TOKEN_EXPIRED = "The token ({}) is expired"
NONCE_REUSED = "The nonce provided in JWT payload ({}) has already been used"
INSUFFICIENT_SCOPE = "The request requires higher privileges than provided by the access token"
VALIDATION = "Parameter validation errors"


def shorten(value: object, limit: int = 80) -> str:
    """Echo client input in a message without letting it grow the response or headers."""
    text = value if isinstance(value, str) else repr(value)
    return text if len(text) <= limit else text[:limit] + "…"


def _header_safe(text: str) -> str:
    """Headers carry latin-1 only and no line breaks."""
    text = " ".join(text.split())
    return text.encode("ascii", "replace").decode("ascii")


def error_response(status: int, code: str, message: str) -> JSONResponse:
    """The documented error body plus the X-Error-* headers."""
    reference = secrets.token_hex(8)
    headers = {
        "X-Error-Code": code,
        "X-Error-Message": _header_safe(message),
        "X-Error-Reference": reference,
    }
    body = {"error": {"code": code, "message": message, "reference": reference}}
    return JSONResponse(body, status_code=status, headers=headers)


class ApiError(Exception):
    """Raised anywhere below an endpoint; turned into `error_response` by `api_endpoint`."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message

    def response(self) -> JSONResponse:
        return error_response(self.status, self.code, self.message)


def validation(detail: str, status: int = 400) -> ApiError:
    """`ValidationErrors` with the v-next text first, then what was actually wrong."""
    return ApiError(status, "ValidationErrors", f"{VALIDATION}: {detail}")


def invalid_request(message: str) -> ApiError:
    return ApiError(400, "InvalidRequest", message)


def invalid_token(which: str, expired: bool = False) -> ApiError:
    template = TOKEN_EXPIRED if expired else TOKEN_INVALID
    return ApiError(401, "InvalidToken", template.format(which))


Endpoint = Callable[[Request], Awaitable[Response]]


def api_endpoint(fn: Endpoint) -> Endpoint:
    """Never a stack trace to the client: ApiError -> its body, anything else -> a 500 body."""

    @functools.wraps(fn)
    async def wrapper(request: Request) -> Response:
        try:
            return await fn(request)
        except ApiError as exc:
            return exc.response()
        except ClientDisconnect:
            return error_response(400, "InvalidRequest", "The client disconnected mid-request")
        except Exception:
            log.exception("digi.me sandbox endpoint %s failed", request.url.path)
            return error_response(500, "InternalServerError", "Internal server error")

    return wrapper
