"""The error hierarchy for datapost: every error a caller may handle derives from DatapostError."""

from __future__ import annotations


class DatapostError(Exception):
    """Base class for every error datapost raises on purpose."""


class ConfigError(DatapostError):
    """Configuration is missing or invalid; the message names the key and its source."""


class RedisServerError(DatapostError):
    """The embedded or private Redis-compatible server could not be started or reached."""


class ValidationError(DatapostError):
    """Input to an enqueue or another public call is invalid; nothing was stored."""


class SealError(DatapostError):
    """A sealed record or payload failed authentication (tampered, truncated, or a key this
    process does not hold)."""


class VaultError(DatapostError):
    """The credential vault could not read or write a record."""


class CredentialNotFound(VaultError):
    """No credential is stored for this (provider, user)."""


class PayloadError(DatapostError):
    """A payload could not be stored or read."""


class PayloadTooLarge(PayloadError, ValidationError):
    """A payload is larger than the configured maximum."""


class PayloadMissing(PayloadError):
    """A job's payload is gone from Redis or the payload directory."""


class JobNotFound(DatapostError):
    """No job record with this id."""
