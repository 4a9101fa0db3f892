"""Prometheus metrics, correct with many worker processes.

Counters and histograms use prometheus_client's multiprocess mode (each worker process writes
to `PROMETHEUS_MULTIPROC_DIR`; the scrape endpoint adds them up). Queue and job-state gauges
are read from Redis at scrape time, so every scrape sees the one source of truth.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import redis
from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from .store.jobs import PREFIX, JobState

# Every name the dashboards and alert rules may use (tests check deploy/ against this).
METRIC_NAMES = (
    "datapost_deliveries_total",
    "datapost_attempt_duration_seconds",
    "datapost_token_refreshes_total",
    "datapost_bytes_uploaded_total",
    "datapost_rate_limited_total",
    "datapost_signins_total",
    "datapost_queue_depth",
    "datapost_jobs",
    "datapost_jobs_delayed",
    "datapost_queue_oldest_age_seconds",
    "datapost_workers",
)
BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 1800.0)


class Metrics:
    """The counters one process updates. Build one per process and pass it down."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        kw = {"registry": registry} if registry is not None else {}
        self.deliveries = Counter("datapost_deliveries", "Delivery attempts by outcome",
                                  ["provider", "outcome"], **kw)
        self.attempt_seconds = Histogram("datapost_attempt_duration_seconds",
                                         "Duration of one delivery attempt", ["provider"],
                                         buckets=BUCKETS, **kw)
        self.refreshes = Counter("datapost_token_refreshes", "Token refresh calls",
                                 ["provider", "result"], **kw)
        self.bytes_uploaded = Counter("datapost_bytes_uploaded", "Payload bytes uploaded",
                                      ["provider"], **kw)
        self.rate_limited = Counter("datapost_rate_limited", "Attempts delayed by a rate or "
                                    "concurrency limit", ["provider", "kind"], **kw)
        self.signins = Counter("datapost_signins", "Sign-ins completed or refused",
                               ["provider", "result"], **kw)

    def outcome(self, provider: str, outcome: str, seconds: float) -> None:
        self.deliveries.labels(provider, outcome).inc()
        self.attempt_seconds.labels(provider).observe(seconds)


class RedisStateCollector(Collector):
    """Queue depth, job states, delayed jobs, oldest queued job and live workers, from Redis."""

    def __init__(self, client: redis.Redis, queue: str, namespace: str,
                 heartbeat_timeout: float = 20.0,
                 queue_depth: Callable[[], tuple[int, int]] | None = None) -> None:
        self.redis = client
        self.queue = queue
        self.namespace = namespace
        self.heartbeat_timeout = heartbeat_timeout
        self.queue_depth = queue_depth  # (ready, delayed) for a broker other than Redis

    def collect(self) -> Iterator[GaugeMetricFamily]:
        now = time.time()
        pipe = self.redis.pipeline(transaction=False)
        pipe.llen(f"{self.namespace}:{self.queue}")
        pipe.llen(f"{self.namespace}:{self.queue}.DQ")
        for state in JobState:
            pipe.zcard(f"{PREFIX}jobs:{state}")
        pipe.zcount(f"{PREFIX}due", f"({now}", "+inf")
        pipe.zrange(f"{PREFIX}jobs:queued", 0, 0, withscores=True)
        pipe.zcount(f"{self.namespace}:__heartbeats__", (now - self.heartbeat_timeout) * 1000,
                    "+inf")
        replies = pipe.execute()
        ready, delayed = self.queue_depth() if self.queue_depth else (replies[0], replies[1])
        depth = GaugeMetricFamily("datapost_queue_depth", "Messages waiting in the broker queue",
                                  labels=["queue"])
        depth.add_metric([self.queue], ready)
        depth.add_metric([f"{self.queue}.DQ"], delayed)
        yield depth
        jobs = GaugeMetricFamily("datapost_jobs", "Jobs by state", labels=["state"])
        for state, count in zip(JobState, replies[2:2 + len(JobState)], strict=True):
            jobs.add_metric([str(state)], count)
        yield jobs
        rest = replies[2 + len(JobState):]
        yield GaugeMetricFamily("datapost_jobs_delayed", "Jobs waiting for a later run time",
                                value=rest[0])
        oldest = rest[1][0][1] if rest[1] else now
        yield GaugeMetricFamily("datapost_queue_oldest_age_seconds",
                                "Age of the oldest job still queued", value=max(0.0, now - oldest))
        yield GaugeMetricFamily("datapost_workers", "Worker processes with a fresh heartbeat",
                                value=rest[2])


_process_metrics: Metrics | None = None


def process_metrics() -> Metrics:
    """The one Metrics of this process (prometheus_client registers each name once per
    process; several DeliveryServices in one process, as in tests, share it)."""
    global _process_metrics
    if _process_metrics is None:
        _process_metrics = Metrics()
    return _process_metrics
