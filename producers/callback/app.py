"""The callback receiver as an ASGI app: run it with `datapost callback`, or mount it into an
existing ASGI application (`Mount("/datapost", app=create_app(datapost))`)."""

from __future__ import annotations

from collections.abc import Callable

import redis
from prometheus_client import REGISTRY, CollectorRegistry, generate_latest
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from worker.logging import get_logger
from worker.metrics import Metrics, RedisStateCollector, process_metrics
from worker.queue import NAMESPACE

from ..client import Datapost
from . import pages
from .receiver import CallbackReceiver

log = get_logger("datapost.callback")


def guarded(handler: Callable[[Request], Response]):
    """Run a blocking handler off the event loop; an unexpected error is a 503 page, never a
    500 with a trace."""

    async def endpoint(request: Request) -> Response:
        try:
            return await run_in_threadpool(handler, request)
        except Exception:
            log.exception("callback failed", path=request.url.path)
            return pages.page("Something went wrong", "Connecting did not complete because of "
                              "a problem on our side. Please try again in a minute.", status=503)

    return endpoint


def create_app(datapost: Datapost, metrics: Metrics | None = None) -> Starlette:
    metrics = metrics or process_metrics()
    receiver = CallbackReceiver(datapost, on_result=lambda provider, result:
                                metrics.signins.labels(provider, result).inc())
    settings = datapost.stores.settings
    registry = CollectorRegistry()
    registry.register(RedisStateCollector(datapost.stores.redis, settings.delivery.queue,
                                          NAMESPACE))

    async def healthz(request: Request) -> Response:
        return JSONResponse({"ok": True})

    def ready() -> bool:
        try:
            return bool(datapost.stores.redis.ping())
        except redis.RedisError:
            return False

    async def readyz(request: Request) -> Response:
        ok = await run_in_threadpool(ready)
        return JSONResponse({"ok": ok, "redis": ok}, status_code=200 if ok else 503)

    async def metrics_endpoint(request: Request) -> Response:
        def render() -> bytes:
            return generate_latest(REGISTRY) + generate_latest(registry)
        try:
            body = await run_in_threadpool(render)
        except redis.RedisError:
            return Response("redis unavailable\n", status_code=503, media_type="text/plain")
        return Response(body, media_type="text/plain; version=0.0.4; charset=utf-8")

    async def not_found(request: Request, exc: Exception) -> Response:
        return pages.page("Not found", "There is nothing here.", status=404)

    routes = [
        Route("/connect/{state}", guarded(receiver.connect), methods=["GET"]),
        Route("/digime/return", guarded(receiver.digime_return), methods=["GET"]),
        Route("/dataswyft/return", guarded(receiver.dataswyft_return), methods=["GET"]),
        Route("/dataswyft/fallback", guarded(receiver.dataswyft_fallback), methods=["GET"]),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
        Route("/metrics", metrics_endpoint, methods=["GET"]),
    ]
    return Starlette(routes=routes, exception_handlers={404: not_found, 405: not_found})
