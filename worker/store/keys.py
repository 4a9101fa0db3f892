"""Every Redis key datapost writes, in one place (prefix `datapost:`).

Operators, dashboards and migrations rely on these names: change them only together with
every reader.
"""

from __future__ import annotations

PREFIX = "datapost:"


def credential(provider: str, user: str) -> str:
    """Hash: one sealed credential and its clear metadata."""
    return f"{PREFIX}cred:{provider}:{user}"


def credential_index(provider: str) -> str:
    """Set: the users holding a credential for `provider`."""
    return f"{PREFIX}creds:{provider}"


def payload(job_id: str) -> str:
    """String: a small sealed payload (large ones live in the payload directory)."""
    return f"{PREFIX}payload:{job_id}"


def job(job_id: str) -> str:
    """Hash: one job record."""
    return f"{PREFIX}job:{job_id}"


def idempotency(provider: str, key: str) -> str:
    """String with TTL: the job id created for a caller's idempotency key."""
    return f"{PREFIX}idem:{provider}:{key}"
