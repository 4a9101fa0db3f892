"""The error hierarchy for datapost: every error a caller may handle derives from DatapostError."""

from __future__ import annotations


class DatapostError(Exception):
    """Base class for every error datapost raises on purpose."""


class ConfigError(DatapostError):
    """Configuration is missing or invalid; the message names the key and its source."""


class RedisServerError(DatapostError):
    """The embedded or private Redis-compatible server could not be started or reached."""
