"""The digi.me API as one ASGI app; the server mounts it at /v1.7 and /v1.6."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from .errors import error_response
from .import_ import import_endpoint
from .oauth import oauth_endpoints
from .postbox import postbox_endpoint


async def _http_error(request: Request, exc: Exception) -> Response:
    """Unknown paths and wrong methods get the documented error body too."""
    status = exc.status_code if isinstance(exc, HTTPException) else 500
    if status == 404:
        return error_response(404, "NotFound", f"No such endpoint: {request.url.path}")
    if status == 405:
        return error_response(405, "MethodNotAllowed",
                              f"{request.method} is not allowed on {request.url.path}")
    detail = str(getattr(exc, "detail", "")) or "Bad request"
    return error_response(status, "InvalidRequest", detail)


def digime_api_app(world) -> Starlette:
    """oauth/authorize, oauth/token, jwks/oauth, permission-access/postbox/{id}, …/import."""
    state = world.digime
    oauth = oauth_endpoints(state)
    return Starlette(
        routes=[
            Route("/oauth/authorize", oauth["authorize"], methods=["POST"]),
            Route("/oauth/token", oauth["token"], methods=["POST"]),
            Route("/jwks/oauth", oauth["jwks"], methods=["GET"]),
            Route("/permission-access/postbox/{postbox_id}", postbox_endpoint(state),
                  methods=["POST"]),
            Route("/permission-access/import", import_endpoint(state), methods=["POST"]),
        ],
        exception_handlers={HTTPException: _http_error},
    )
