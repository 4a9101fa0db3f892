"""The worker process: stores, broker, providers and the delivery engine, wired once.

`DeliveryService.build` is the edge for a worker process: configuration goes in, and
everything below receives what it needs as arguments.
"""

from __future__ import annotations

import os
import socket
import threading
import uuid
from collections.abc import Callable

import dramatiq
import httpx

from .config import Settings
from .dataswyft import DataswyftClient, DomainPolicy
from .delivery.dataswyft import DataswyftDelivery
from .delivery.dataswyft_tokens import PdaKeepAlive, PdaTokenKeeper
from .delivery.digime import DigimeDelivery
from .delivery.digime_tokens import DigimeTokenKeeper
from .delivery.engine import DeliveryEngine, retry_on_store_outage
from .delivery.limits import RateLimiter, parse_limits
from .delivery.locks import RedisLock
from .delivery.outcomes import DeliveryFailure, Outcome
from .delivery.retry import RetryPolicy
from .digime import DigimeClient, KeyCache, TokenVerifier
from .errors import ConfigError
from .logging import Redactor
from .metrics import Metrics, process_metrics
from .queue import ACTOR_NAME, Publisher, Recovery, build_broker
from .runtime import Stores
from .store import keys as store_keys
from .store.jobs import JobState
from .store.payloads import PayloadRef

ACTOR_TIME_LIMIT_MS = 2 * 3600 * 1000
SWEEP_EVERY = 60.0
KEEPALIVE_EVERY = 600.0


class LazyDigimeClient:
    """Builds the digi.me client on first use, so a worker without digi.me settings still
    runs other jobs; a digi.me job then fails with the configuration problem."""

    def __init__(self, settings: Settings, http: httpx.Client, keys: KeyCache) -> None:
        self.settings = settings
        self.http = http
        self.keys = keys
        self._client: DigimeClient | None = None
        self._lock = threading.Lock()

    def __call__(self) -> DigimeClient:
        if self._client is None:
            with self._lock:
                if self._client is None:
                    self._client = self._build()
        return self._client

    def _build(self) -> DigimeClient:
        digime = self.settings.digime
        try:
            key = self.keys.get(digime)
        except ConfigError as exc:
            raise DeliveryFailure(Outcome.PERMANENT, f"digi.me is not configured: {exc}") from None
        verifier = TokenVerifier(self.http, digime.api_url)
        return DigimeClient(digime, key, self.http, verifier)


class DeliveryService:
    def __init__(self, settings: Settings, stores: Stores, broker: dramatiq.Broker,
                 http: httpx.Client, engine: DeliveryEngine, recovery: Recovery) -> None:
        self.settings = settings
        self.stores = stores
        self.broker = broker
        self.http = http
        self.engine = engine
        self.recovery = recovery

    @classmethod
    def build(cls, settings: Settings, redis_url: str, *, broker_url: str | None = None,
              redactor: Redactor | None = None, worker_id: str | None = None,
              keys: KeyCache | None = None, sleep: Callable[[float], None] | None = None,
              metrics: Metrics | None = None) -> DeliveryService:
        stores = Stores.connect(settings, redis_url, redactor=redactor)
        broker = build_broker(broker_url or settings.broker_url or redis_url)
        publisher = Publisher(broker, settings.delivery.queue)
        d = settings.delivery
        http = httpx.Client(timeout=httpx.Timeout(d.http_timeout),
                            limits=httpx.Limits(max_connections=200, max_keepalive_connections=50))
        digime_client = LazyDigimeClient(settings, http, keys or KeyCache())
        metrics = metrics or process_metrics()
        keeper = DigimeTokenKeeper(
            vault=stores.vault, client=digime_client, redis_client=stores.redis,
            skew=d.refresh_skew, lock_ttl=d.refresh_lock_ttl, redactor=redactor,
            on_refresh=lambda ok: metrics.refreshes.labels("digime", "ok" if ok else "failed").inc())
        limiter = RateLimiter(stores.redis, parse_limits(d.rate_limits),
                              on_limited=lambda p, kind: metrics.rate_limited.labels(p, kind).inc())
        extra: dict = {"sleep": sleep} if sleep else {}
        pda_client = DataswyftClient(http, scheme=settings.dataswyft.scheme,
                                     policy=DomainPolicy.from_settings(settings))
        pda_keeper = PdaTokenKeeper(vault=stores.vault, redactor=redactor)
        suffixes, sandbox = settings.dataswyft.allowed_domains, settings.sandbox_mode
        providers = {
            "digime": DigimeDelivery(
                vault=stores.vault, payloads=stores.payloads, client=digime_client,
                keeper=keeper, tries=d.http_attempts, max_wait=d.max_inline_wait,
                limiter=limiter, on_upload=metrics.bytes_uploaded.labels("digime").inc, **extra),
            "dataswyft": DataswyftDelivery(
                vault=stores.vault, payloads=stores.payloads, jobs=stores.jobs, client=pda_client,
                keeper=pda_keeper, allowed_suffixes=suffixes, sandbox_mode=sandbox,
                tries=d.http_attempts, max_wait=d.max_inline_wait, limiter=limiter,
                on_upload=metrics.bytes_uploaded.labels("dataswyft").inc, **extra),
        }
        keep_alive = PdaKeepAlive(vault=stores.vault, client=pda_client, keeper=pda_keeper,
                                  allowed_suffixes=suffixes, sandbox_mode=sandbox)
        worker_id = worker_id or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        engine = DeliveryEngine(jobs=stores.jobs, publisher=publisher,
                                policy=RetryPolicy(settings.retry), providers=providers,
                                settings=d, worker_id=worker_id,
                                on_finished=lambda job, state: cls._cleanup(stores, job, state),
                                finish_keys=cls._finish_keys, on_outcome=metrics.outcome)
        recovery = Recovery(on_tick=[
            engine.extend_leases,
            lambda: cls._every(stores, "sweep", SWEEP_EVERY, engine.sweep),
            lambda: cls._every(stores, "keepalive", KEEPALIVE_EVERY, keep_alive.run_once),
        ])
        broker.add_middleware(recovery)
        return cls(settings, stores, broker, http, engine, recovery)

    @staticmethod
    def _finish_keys(job, state) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """(delete, expire): what the move to `state` does to an inline payload in the same
        script. A succeeded job's payload is no longer needed. Failed and dead jobs can be
        replayed, so theirs stays as long as the job record (result TTL); parked jobs keep
        theirs until they resume."""
        if job.payload_kind != "inline":
            return (), ()
        if state in (JobState.SUCCEEDED, JobState.CANCELLED):
            return (store_keys.payload(job.id),), ()
        if state in (JobState.FAILED, JobState.DEAD):
            return (), (store_keys.payload(job.id),)
        return (), ()

    @staticmethod
    def _cleanup(stores: Stores, job, state) -> None:
        """A payload file goes with its succeeded job, as an inline one does (`_finish_keys`);
        failed and dead jobs keep theirs for a replay."""
        ref = PayloadRef(job.payload_kind, job.payload_size)
        if ref.kind == "file" and state in (JobState.SUCCEEDED, JobState.CANCELLED):
            stores.payloads.delete(job.id, ref)

    @staticmethod
    def _every(stores: Stores, name: str, seconds: float, task: Callable[[], object]) -> None:
        """Run `task` in at most one worker process per `seconds` (the lock is left to
        expire, so it doubles as the schedule)."""
        lock = RedisLock(stores.redis, f"datapost:lock:{name}", seconds)
        if lock.acquire(wait=0):
            task()

    def declare_actor(self) -> dramatiq.Actor:
        dramatiq.set_broker(self.broker)
        return dramatiq.actor(self.engine.run, actor_name=ACTOR_NAME,
                              queue_name=self.settings.delivery.queue, broker=self.broker,
                              retry_when=retry_on_store_outage, min_backoff=1_000,
                              max_backoff=30_000, time_limit=ACTOR_TIME_LIMIT_MS)

    def close(self) -> None:
        self.http.close()
        self.stores.close()
