"""The file descriptor (digi.me "metadata") and file name, checked before any network call.

Mirrors the SDK's io-ts codec (§8): `mimeType` string (may be empty), `accounts` array of
`{accountId: string}` (may be empty), optional `reference`/`tags` string arrays, extra keys
sent through. Additionally the descriptor must be JSON (finite numbers, string keys), since
it is sent as JSON.stringify would write it.
"""

from __future__ import annotations

import json
from typing import Any

from ..errors import ValidationError


def validate_descriptor(descriptor: Any) -> dict[str, Any]:
    """Return the descriptor unchanged, or raise ValidationError naming the offending field."""
    if not isinstance(descriptor, dict):
        raise ValidationError(f"file descriptor must be an object, got {type(descriptor).__name__}")
    if not isinstance(descriptor.get("mimeType"), str):
        raise ValidationError("file descriptor field mimeType must be a string")
    accounts = descriptor.get("accounts")
    if not isinstance(accounts, list):
        raise ValidationError("file descriptor field accounts must be an array of {accountId: string}")
    for i, account in enumerate(accounts):
        if not isinstance(account, dict) or not isinstance(account.get("accountId"), str):
            raise ValidationError(f"file descriptor field accounts[{i}].accountId must be a string")
    for name in ("reference", "tags"):
        if name in descriptor:
            value = descriptor[name]
            if not isinstance(value, list):
                raise ValidationError(f"file descriptor field {name} must be an array of strings")
            for i, item in enumerate(value):
                if not isinstance(item, str):
                    raise ValidationError(f"file descriptor field {name}[{i}] must be a string")
    descriptor_json(descriptor)
    return descriptor


def descriptor_json(descriptor: dict[str, Any]) -> bytes:
    """UTF-8 of the compact JSON, as `JSON.stringify(fileDescriptor)` produces it."""
    try:
        text = json.dumps(descriptor, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ValidationError(f"file descriptor is not JSON-serialisable ({_reason(exc)})") from None
    return text.encode("utf-8")


def _reason(exc: Exception) -> str:
    text = str(exc)
    if "Out of range float" in text:
        return "NaN or infinite number"
    if "keys must be" in text:
        return "a key that is not a string"
    if "not JSON serializable" in text:
        return text.split(" is not", 1)[0].replace("Object of type", "a value of type")
    return type(exc).__name__


def validate_file_name(file_name: Any) -> str:
    """A non-empty string (it becomes the multipart part's filename)."""
    if not isinstance(file_name, str) or not file_name.strip():
        raise ValidationError("file name must be a non-empty string")
    if any(ord(c) < 32 or ord(c) == 127 for c in file_name):
        raise ValidationError("file name must not contain control characters")
    return file_name
