"""Job-level retry schedule, and retries inside one attempt.

Inside an attempt (`attempt_retrier`, tenacity): connection errors, 5xx and 429/503 with a short
Retry-After are retried a few times at once. After that the job is rescheduled: transient
failures consume the retry budget (exponential backoff with jitter, about 27.6 h in all by
default, like Svix); throttling does not, it only waits as long as the provider asked.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import TypeVar

from tenacity import RetryCallState, Retrying, retry_if_exception, stop_after_attempt

from ..config import RetrySettings
from .outcomes import DeliveryFailure, Outcome

T = TypeVar("T")


class RetryPolicy:
    def __init__(self, settings: RetrySettings, rng: random.Random | None = None) -> None:
        self.settings = settings
        self.rng = rng or random.Random()

    def delay(self, retry_number: int) -> float:
        """Seconds before retry `retry_number` (0-based), with +-jitter."""
        s = self.settings
        base = min(s.cap, s.base * s.factor ** retry_number)
        return max(0.0, base * (1 + self.rng.uniform(-s.jitter, s.jitter)))

    def exhausted(self, failures: int) -> bool:
        """True when `failures` budget-consuming failures leave no retry."""
        return failures > self.settings.max_retries

    def total(self) -> float:
        s = self.settings
        return sum(min(s.cap, s.base * s.factor ** n) for n in range(s.max_retries))


def _retryable_now(max_wait: float) -> Callable[[BaseException], bool]:
    def check(exc: BaseException) -> bool:
        if not isinstance(exc, DeliveryFailure):
            return False
        if exc.outcome is Outcome.TRANSIENT:
            return True
        return exc.outcome is Outcome.THROTTLED and (exc.retry_after or 0) <= max_wait
    return check


def _wait(exc: BaseException | None, attempt_number: int) -> float:
    """Seconds before the next try: the provider's Retry-After, else a jittered backoff."""
    if isinstance(exc, DeliveryFailure) and exc.retry_after is not None:
        return exc.retry_after
    return min(4.0, 0.25 * 2 ** (attempt_number - 1)) * random.uniform(0.8, 1.2)


def _tenacity_wait(state: RetryCallState) -> float:
    exc = state.outcome.exception() if state.outcome else None
    return _wait(exc, state.attempt_number)


def attempt_retrier(*, tries: int, max_wait: float,
                    sleep: Callable[[float], None] = time.sleep) -> Retrying:
    """Retries quick-to-clear failures up to `tries` times in all; anything but a retryable
    DeliveryFailure, and the last try's failure, is raised as it is.

    Built once per provider and called per upload (`retrier(call)`): tenacity keeps each
    call's state thread-local, and building a `Retrying` per call was ~2 % of a small write's
    worker CPU."""
    return Retrying(stop=stop_after_attempt(tries), wait=_tenacity_wait,
                    retry=retry_if_exception(_retryable_now(max_wait)), reraise=True,
                    sleep=sleep)


def within_attempt(call: Callable[[], T], *, tries: int, max_wait: float,
                   sleep: Callable[[float], None] = time.sleep) -> T:
    """Run `call` once under `attempt_retrier` (for one-off use; providers keep theirs)."""
    return attempt_retrier(tries=tries, max_wait=max_wait, sleep=sleep)(call)
