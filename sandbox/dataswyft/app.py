"""The ASGI app that serves every PDA port: finds the PDA by Host, then routes.

Layers, outermost first: CORS (preflights answered, X-Auth-Token exposed), the S3 stand-in
(`/_s3/...`, addressed by key, not by Host), Host -> PDA (unknown: 404 "HAT unavailable"),
per-PDA control (`/_control/...`), then the HAT's own routes.
"""

from __future__ import annotations

import logging
from typing import Any

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from . import applications, data_api, errors, files, login, pages, s3, users
from .control import pda_control
from .routing import Router, run

log = logging.getLogger("sandbox.dataswyft")
ALLOWED_HEADERS = "X-Auth-Token, Content-Type, x-amz-server-side-encryption"
ALLOWED_METHODS = "GET, POST, PUT, DELETE, OPTIONS"


def build_router() -> Router:
    router = Router()
    for module in (users, applications, data_api, files, login):
        module.register(router)
    return router


def _cors(request: Request, response: Response) -> Response:
    origin = request.headers.get("origin")
    if origin:
        response.headers["Access-Control-Allow-Origin"] = origin
        response.headers["Access-Control-Allow-Credentials"] = "true"
        response.headers["Access-Control-Expose-Headers"] = "X-Auth-Token"
        response.headers.append("Vary", "Origin")
    return response


def _preflight() -> Response:
    return Response(status_code=204, headers={
        "Access-Control-Allow-Methods": ALLOWED_METHODS,
        "Access-Control-Allow-Headers": ALLOWED_HEADERS,
        "Access-Control-Max-Age": "600",
    })


class PdaApp:
    """One ASGI app for all PDA ports; the world's `dataswyft` state is read per request."""

    def __init__(self, world: Any) -> None:
        self.world = world
        self.router = build_router()

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        if scope["method"] == "HEAD":  # Play answers HEAD for every GET route, without a body
            scope = {**scope, "method": "GET"}
            send = _without_body(send)
        request = Request(scope, receive)
        try:
            response = await self.handle(request)
        except Exception:  # never a stack trace or a hang
            log.exception("PDA request failed: %s %s", request.method, request.url.path)
            response = errors.server_error()
        await _cors(request, response)(scope, receive, send)

    async def handle(self, request: Request) -> Response:
        state = getattr(self.world, "dataswyft", None)
        if state is None:
            return errors.hat_unavailable()
        path = request.url.path
        if request.method == "OPTIONS" and request.headers.get("access-control-request-method"):
            return _preflight()
        if path.startswith("/_s3/"):
            return await s3.handle(request, state.objects, state.presigner, state.now())
        pda = state.pda_for_host(request.headers.get("host", ""))
        if pda is None:
            return errors.hat_unavailable()
        if path == "/_control" or path.startswith("/_control/"):
            return await pda_control(state, pda, request, path[len("/_control"):])
        return await run(self.router, request, state, pda,
                         lambda _req: HTMLResponse(pages.index(pda.domain)))


def _without_body(send: Any) -> Any:
    async def head_send(message: dict) -> None:
        if message["type"] == "http.response.body":
            message = {**message, "body": b""}
        await send(message)

    return head_send


async def _lifespan(receive: Any, send: Any) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


def pda_app(world: Any) -> PdaApp:
    """Everything a PDA host serves (HAT routes, login pages, `/_control`, `/_s3`)."""
    return PdaApp(world)
