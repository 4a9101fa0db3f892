"""What every write type turns into before it is stored: one job's provider, operation,
sealed request and payload."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol


@dataclass(frozen=True)
class Prepared:
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
