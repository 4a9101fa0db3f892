"""Plain dramatiq, for side-by-side figures: a no-op actor on its own queue and namespace.

The Redis URL comes from BENCH_NOOP_REDIS_URL (the benchmark's private Redis). Each run of
the actor INCRs `bench:noop:done`, so a benchmark can tell when the queue is drained.

    BENCH_NOOP_REDIS_URL=redis://... python -m dramatiq bench.noop_actor -p 2 -t 8
"""

from __future__ import annotations

import os

import dramatiq
import redis
from dramatiq.brokers.redis import RedisBroker

NAMESPACE = "bench-noop-dramatiq"
QUEUE = "bench_noop"
DONE_KEY = "bench:noop:done"

URL = os.environ.get("BENCH_NOOP_REDIS_URL", "redis://127.0.0.1:6379/0")
broker = RedisBroker(url=URL, namespace=NAMESPACE)
dramatiq.set_broker(broker)
counter = redis.Redis.from_url(URL)


@dramatiq.actor(queue_name=QUEUE, broker=broker, max_retries=0)
def noop(payload: str = "") -> None:
    counter.incr(DONE_KEY)
