"""The HTTP side of `datapost worker`: /metrics (all worker processes added up, plus queue
and job gauges from Redis), /healthz (the worker processes are running) and /readyz (Redis
answers and a worker process has a fresh heartbeat)."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import redis
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from worker.metrics import RedisStateCollector
from worker.queue import HEARTBEAT_TIMEOUT_MS, NAMESPACE, build_broker

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def broker_depth(broker_url: str | None, queue: str) -> Callable[[], tuple[int, int]] | None:
    """(ready, delayed) from RabbitMQ when the queue lives there; None for the Redis broker."""
    if not broker_url or not broker_url.startswith(("amqp://", "amqps://")):
        return None
    broker = build_broker(broker_url)

    def depth() -> tuple[int, int]:
        ready, delayed, _dead = broker.get_queue_message_counts(queue)
        return ready, delayed

    return depth


def metrics_app(multiproc_dir: Path, redis_url: str, queue: str, child: subprocess.Popen,
                broker_url: str | None = None) -> Starlette:
    client = redis.Redis.from_url(redis_url, socket_timeout=5)
    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=str(multiproc_dir))
    registry.register(RedisStateCollector(client, queue, NAMESPACE,
                                          heartbeat_timeout=HEARTBEAT_TIMEOUT_MS / 1000,
                                          queue_depth=broker_depth(broker_url, queue)))

    async def metrics(request: Request) -> Response:
        try:
            body = await run_in_threadpool(generate_latest, registry)
        except redis.RedisError:
            return Response("redis unavailable\n", status_code=503, media_type="text/plain")
        return Response(body, media_type=CONTENT_TYPE)

    async def healthz(request: Request) -> Response:
        alive = child.poll() is None
        return JSONResponse({"ok": alive}, status_code=200 if alive else 503)

    def ready() -> tuple[bool, dict]:
        try:
            client.ping()
            fresh = client.zcount(f"{NAMESPACE}:__heartbeats__",
                                  (time.time() - HEARTBEAT_TIMEOUT_MS / 1000) * 1000, "+inf")
        except redis.RedisError:
            return False, {"redis": False}
        ok = child.poll() is None and fresh > 0
        return ok, {"redis": True, "workers": fresh, "running": child.poll() is None}

    async def readyz(request: Request) -> Response:
        ok, detail = await run_in_threadpool(ready)
        return JSONResponse({"ok": ok, **detail}, status_code=200 if ok else 503)

    return Starlette(routes=[Route("/metrics", metrics), Route("/healthz", healthz),
                             Route("/readyz", readyz)])
