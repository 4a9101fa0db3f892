"""A Redis lock for single-flight work across every worker (token refresh).

The TTL must outlast the slowest token call, so a live holder never loses the lock; the
owner token makes release safe after an expiry.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator
from contextlib import contextmanager

import redis

from ..errors import DatapostError

RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
    return redis.call('DEL', KEYS[1])
end
return 0
"""


class LockTimeout(DatapostError):
    """Could not take the lock in time (another worker held it throughout)."""


class RedisLock:
    def __init__(self, client: redis.Redis, key: str, ttl: float) -> None:
        self.redis = client
        self.key = key
        self.ttl = ttl
        self._token = secrets.token_hex(16)
        self._release = client.register_script(RELEASE)

    def acquire(self, wait: float) -> bool:
        deadline = time.monotonic() + wait
        pause = 0.005
        while True:
            if self.redis.set(self.key, self._token, nx=True, px=int(self.ttl * 1000)):
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(pause)
            pause = min(pause * 2, 0.1)

    def release(self) -> None:
        self._release(keys=[self.key], args=[self._token])

    @contextmanager
    def held(self, wait: float) -> Iterator[None]:
        if not self.acquire(wait):
            raise LockTimeout(f"lock {self.key} still held after {wait:.0f} s")
        try:
            yield
        finally:
            self.release()
