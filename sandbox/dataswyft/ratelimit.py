"""The one limiter the HAT has: a token bucket on the password login, keyed by client address."""

from __future__ import annotations

import threading


class TokenBucketLimiter:
    """`capacity` requests at once, then one more every `refill_seconds` (sandbox clock)."""

    def __init__(self, capacity: int = 10, refill_seconds: float = 2.0,
                 max_keys: int = 10_000) -> None:
        self.capacity = capacity
        self.refill_seconds = refill_seconds
        self.max_keys = max_keys
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def allow(self, key: str, now: float) -> bool:
        """Take one token for `key`; False when the bucket is empty."""
        with self._lock:
            tokens, last = self._buckets.get(key, (float(self.capacity), now))
            elapsed = max(0.0, now - last)  # the test clock may move backwards
            tokens = min(float(self.capacity), tokens + elapsed / self.refill_seconds)
            if len(self._buckets) >= self.max_keys and key not in self._buckets:
                self._buckets.clear()  # bounded memory; forgetting buckets only lets more through
            if tokens < 1.0:
                self._buckets[key] = (tokens, now)
                return False
            self._buckets[key] = (tokens - 1.0, now)
            return True

    def reset(self) -> None:
        with self._lock:
            self._buckets.clear()
