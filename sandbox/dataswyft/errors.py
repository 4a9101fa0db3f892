"""The HAT's two error envelopes, Play's HTML error pages, and content negotiation.

Framework errors (`utils/ErrorHandler.scala`): {"error": <title>, "message": <string|json>}.
Controller errors (`ErrorMessage`):           {"message": <title>, "cause": <detail>}.
Keeping both shapes exact matters: clients (datapost included) classify failures by them.
"""

from __future__ import annotations

import html
import secrets
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response


class ApiError(Exception):
    """Raised by handlers; carries the finished response.

    `renew` is False for the errors the HAT raises outside Silhouette's renewal path
    (uncaught 500s, body-parse failures), which therefore carry no X-Auth-Token.
    """

    def __init__(self, response: Response, *, renew: bool = True) -> None:
        super().__init__(response.status_code)
        self.response = response
        self.renew = renew


def framework(status: int, title: str, message: Any) -> JSONResponse:
    return JSONResponse({"error": title, "message": message}, status_code=status)


def controller(status: int, message: str, cause: str, **extra: Any) -> JSONResponse:
    return JSONResponse({"message": message, "cause": cause, **extra}, status_code=status)


def _accepts(request: Request | None) -> tuple[bool, bool]:
    """(json acceptable, html acceptable) from the Accept header; missing counts as */*."""
    accept = request.headers.get("accept", "") if request is not None else ""
    if not accept.strip():
        return True, True
    types = set()
    for part in accept.split(","):
        media, *params = part.split(";")
        quality = 1.0
        for param in params:
            key, _, value = param.strip().partition("=")
            if key.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        if quality > 0:  # q=0 means "not acceptable"
            types.add(media.strip().lower())
    wants_json = bool(types & {"application/json", "application/*", "*/*"})
    wants_html = bool(types & {"text/html", "text/*", "*/*"})
    return wants_json, wants_html


def _negotiated(request: Request | None, status: int, title: str, message: str) -> Response:
    """401/403 as JSON, or a 303 to the dashboard when the client accepts only HTML."""
    wants_json, wants_html = _accepts(request)
    if not wants_json and wants_html:
        resp: Response = RedirectResponse("/", status_code=303)
    else:
        resp = framework(status, title, message)
    resp.headers["Vary"] = "Accept"
    return resp


def not_authenticated(request: Request | None = None) -> Response:
    return _negotiated(request, 401, "Not Authenticated", "Not Authenticated")


def forbidden(request: Request | None = None) -> Response:
    return _negotiated(request, 403, "Forbidden", "Access Denied")


def hat_unavailable() -> JSONResponse:
    return framework(404, "Not Found", "HAT unavailable")


def handler_not_found(method: str, path: str) -> JSONResponse:
    return framework(404, "Handler Not Found", f"Request handler at {method}:{path} does not exist")


def bad_request(message: Any) -> JSONResponse:
    return framework(400, "Bad Request", message)


def bind_error(name: str, kind: str, value: str) -> JSONResponse:
    """Play's message when a query/path parameter does not bind to its type."""
    return bad_request(f"Cannot parse parameter {name} as {kind}: For input string: \"{value}\"")


def path_missing(*paths: str) -> JSONResponse:
    """Play JSON validation failure: {"obj.x": [{"msg": ["error.path.missing"], "args": []}]}."""
    return bad_request({p: [{"msg": ["error.path.missing"], "args": []}] for p in paths})


def validation(errors: dict[str, str]) -> JSONResponse:
    """Play JSON validation failure with one message key per path."""
    return bad_request({p: [{"msg": [m], "args": []}] for p, m in errors.items()})


def server_error() -> JSONResponse:
    return framework(500, "Internal Server error", f"Server error occurred: {secrets.token_hex(4)}")


def play_html(status: int, title: str, detail: str) -> Response:
    """Play's default HTML error page (used for 413/415, which the HAT never customises)."""
    body = (
        "<!DOCTYPE html><html><head><title>" + html.escape(title) + "</title></head><body>"
        "<h1>" + html.escape(title) + "</h1><p id=\"detail\">" + html.escape(detail) + "</p>"
        "</body></html>"
    )
    return Response(body, status_code=status, media_type="text/html; charset=utf-8")


def unsupported_media_type(content_type: str) -> Response:
    return play_html(415, "Unsupported Media Type",
                     f"Expecting text/json or application/json body (got {content_type or 'none'})")


def entity_too_large() -> Response:
    return play_html(413, "Request Entity Too Large", "Request Entity Too Large")
