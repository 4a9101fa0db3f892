"""What every write type turns into before it is stored: one job's provider, operation,
sealed request and payload."""

from __future__ import annotations

import functools
from typing import Any, NamedTuple, Protocol

from . import validation


class Prepared(NamedTuple):
    """A tuple: a bulk enqueue makes one per write."""

    provider: str
    op: str
    user: str
    spec: dict[str, Any]
    data: Any  # bytes, a path or a binary stream
    idempotency_key: str | None
    delay: float


class Write(Protocol):
    """A write an application enqueues; `validated()` raises ValidationError, `prepare()`
    decides what the job needs given the user's stored credential."""

    provider: str
    user: str

    def validated(self) -> Write: ...

    def prepare(self, credential: Any) -> Prepared: ...


@functools.lru_cache(maxsize=4096)
def _checked_user(value: str) -> str:
    return validation.user_ref(value)


def user_ref(value: Any) -> str:
    """`validation.user_ref`, remembered for strings: a bulk enqueue names few users many
    times."""
    return _checked_user(value) if type(value) is str else validation.user_ref(value)
