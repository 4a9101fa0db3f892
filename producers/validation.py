"""Checks on what an application passes in, before anything is stored."""

from __future__ import annotations

import io
import os
from typing import Any

from worker.errors import ValidationError

MAX_DELAY_SECONDS = 6 * 86400


def user_ref(value: Any) -> str:
    if not isinstance(value, str) or not value or len(value) > 200:
        raise ValidationError("user must be a non-empty string of at most 200 characters")
    if any(ord(c) < 32 or ord(c) == 127 for c in value):
        raise ValidationError("user must not contain control characters")
    return value


def file_name(value: Any) -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > 255:
        raise ValidationError("file_name must be a non-empty string of at most 255 characters")
    if any(c in value for c in '"\\/\r\n\0'):
        raise ValidationError('file_name must not contain quotes, slashes or line breaks')
    return value


def idempotency_key(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not 1 <= len(value) <= 200 or not value.isprintable():
        raise ValidationError("idempotency_key must be 1-200 printable characters")
    return value


def delay_seconds(value: Any) -> float:
    if value is None:
        return 0.0
    seconds = value.total_seconds() if hasattr(value, "total_seconds") else value
    if not isinstance(seconds, int | float) or isinstance(seconds, bool) or \
            not 0 <= seconds <= MAX_DELAY_SECONDS:
        raise ValidationError(f"delay must be from 0 to {MAX_DELAY_SECONDS} seconds")
    return float(seconds)


def payload_source(value: Any) -> Any:
    """bytes, a path (str or PathLike) or a readable binary stream."""
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value)
    if isinstance(value, str | os.PathLike):
        return value
    if isinstance(value, io.TextIOBase):
        raise ValidationError("data is a text stream; open the file in binary mode ('rb')")
    if hasattr(value, "read"):
        return value
    raise ValidationError("data must be bytes, a file path or a readable binary stream, "
                          f"not {type(value).__name__}")
