"""Outcome classes: every provider error maps to exactly one, and each class has one action
(DESIGN.md, "Outcome classes")."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from ..errors import DatapostError


class Outcome(StrEnum):
    TRANSIENT = "transient"  # retry with backoff + jitter
    THROTTLED = "throttled"  # retry after Retry-After; not counted against the budget
    TOKEN_EXPIRED = "token_expired"  # refresh once and redo the upload once
    NEEDS_SIGNIN = "needs_signin"  # park until the user reconnects
    PERMANENT = "permanent"  # fail with the provider's message
    ALREADY_STORED = "already_stored"  # succeeded, deduplicated


class DeliveryFailure(DatapostError):
    """One attempt failed; `outcome` says what happens next. The message is safe to store
    in the job record (providers' messages, never tokens or payload bytes)."""

    def __init__(self, outcome: Outcome, message: str, *, status: int | None = None,
                 code: str | None = None, retry_after: float | None = None,
                 error_class: str | None = None) -> None:
        super().__init__(message)
        self.outcome = outcome
        self.message = message
        self.status = status
        self.code = code
        self.retry_after = retry_after
        self.error_class = error_class or type(self).__name__

    def to_record(self) -> dict[str, Any]:
        return {"class": str(self.outcome), "message": self.message, "status": self.status,
                "code": self.code, "error": self.error_class}


@dataclass(frozen=True)
class Delivered:
    """A successful attempt: what goes into the job's result."""

    result: dict[str, Any]
    status: int | None = None
