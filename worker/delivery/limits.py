"""Rate and concurrency limits shared by every worker through Redis.

Limits are named: `digime`, `dataswyft`, and `pda-host` (applied to each PDA host on its
own). A request that would exceed a limit is not sent: the attempt ends as `throttled` with
the time until a slot frees up, which reschedules the job without using its retry budget.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

import redis

from .outcomes import DeliveryFailure, Outcome

BUCKET = """
-- token bucket: KEYS[1] hash {tokens, ts}; ARGV rate/s, burst, now
local rate, burst, now = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local state = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(state[1]) or burst
local ts = tonumber(state[2]) or now
tokens = math.min(burst, tokens + math.max(0, now - ts) * rate)
local wait = 0
if tokens >= 1 then
    tokens = tokens - 1
else
    wait = (1 - tokens) / rate
end
redis.call('HSET', KEYS[1], 'tokens', tokens, 'ts', now)
redis.call('EXPIRE', KEYS[1], math.ceil(burst / rate) + 60)
return tostring(wait)
"""

SEMAPHORE = """
-- concurrency: KEYS[1] zset member=lease score=expiry; ARGV limit, lease, now, ttl
local limit, lease, now, ttl = tonumber(ARGV[1]), ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) >= limit then
    local first = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
    return tostring(math.max(0.05, math.min(5, tonumber(first[2]) - now)))
end
redis.call('ZADD', KEYS[1], now + ttl, lease)
redis.call('EXPIRE', KEYS[1], ttl + 60)
return "0"
"""


@dataclass(frozen=True)
class Limit:
    rate: float | None = None  # requests per second
    burst: int = 1
    concurrency: int | None = None


class Slot:
    """A held concurrency slot; release when the request is done."""

    def __init__(self, client: redis.Redis, keys: list[tuple[str, str]]) -> None:
        self.redis = client
        self.keys = keys

    def release(self) -> None:
        if self.keys:
            pipe = self.redis.pipeline(transaction=False)
            for key, lease in self.keys:
                pipe.zrem(key, lease)
            pipe.execute()

    def __enter__(self) -> Slot:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


class RateLimiter:
    def __init__(self, client: redis.Redis, limits: dict[str, Limit], *, lease_ttl: float = 600,
                 on_limited: Callable[[str, str], None] | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self.redis = client
        self.limits = limits
        self.lease_ttl = lease_ttl
        self.on_limited = on_limited
        self.clock = clock
        self._bucket = client.register_script(BUCKET)
        self._semaphore = client.register_script(SEMAPHORE)

    def acquire(self, provider: str, host: str | None = None) -> Slot:
        """Take a token from each applicable bucket and a slot from each semaphore, or raise
        a throttled DeliveryFailure saying how long to wait."""
        names = [(provider, f"datapost:rl:{provider}")]
        if host:
            names.append(("pda-host", f"datapost:rl:pda-host:{host}"))
        held: list[tuple[str, str]] = []
        for name, key in names:
            limit = self.limits.get(name)
            if limit is None:
                continue
            if limit.concurrency:
                lease = uuid.uuid4().hex
                wait = float(self._semaphore(keys=[key + ":conc"], args=[
                    limit.concurrency, lease, self.clock(), self.lease_ttl]))
                if wait > 0:
                    Slot(self.redis, held).release()
                    self._limited(provider, "concurrency", name, wait)
                held.append((key + ":conc", lease))
            if limit.rate:
                wait = float(self._bucket(keys=[key + ":rate"],
                                          args=[limit.rate, max(1, limit.burst), self.clock()]))
                if wait > 0:
                    Slot(self.redis, held).release()
                    self._limited(provider, "rate", name, wait)
        return Slot(self.redis, held)

    def _limited(self, provider: str, kind: str, name: str, wait: float) -> None:
        if self.on_limited is not None:
            self.on_limited(provider, kind)
        raise DeliveryFailure(Outcome.THROTTLED, f"{name} {kind} limit reached; retry in "
                              f"{wait:.2f} s", retry_after=max(wait, 0.05),
                              error_class="RateLimited")


def parse_limits(text: str) -> dict[str, Limit]:
    """`digime=50/s:20,dataswyft=100/s,pda-host=5/s:2` (rate per second[:concurrency]);
    `name=:4` sets only a concurrency. Raises ValueError with the offending part."""
    limits: dict[str, Limit] = {}
    for part in (p.strip() for p in text.split(",") if p.strip()):
        name, _, spec = part.partition("=")
        name = name.strip()
        if name not in ("digime", "dataswyft", "pda-host"):
            raise ValueError(f"unknown limit {name!r} (digime, dataswyft or pda-host)")
        rate_text, _, conc_text = spec.partition(":")
        rate = burst = None
        if rate_text.strip():
            if not rate_text.strip().endswith("/s"):
                raise ValueError(f"{part!r}: a rate is written like 50/s")
            try:
                rate = float(rate_text.strip()[:-2])
            except ValueError:
                raise ValueError(f"{part!r}: {rate_text!r} is not a number per second") from None
            if rate <= 0:
                raise ValueError(f"{part!r}: the rate must be positive")
            burst = max(1, int(rate))
        concurrency = None
        if conc_text.strip():
            if not conc_text.strip().isdigit() or int(conc_text) < 1:
                raise ValueError(f"{part!r}: concurrency must be a positive integer")
            concurrency = int(conc_text)
        if rate is None and concurrency is None:
            raise ValueError(f"{part!r}: give a rate (50/s), a concurrency (:4) or both")
        limits[name] = Limit(rate=rate, burst=burst or 1, concurrency=concurrency)
    return limits
