"""The file descriptor (`metadata`) shape, checked as the SDK's io-ts codec does (notes §8).

`{mimeType: string, accounts: [{accountId: string}], reference?: string[], tags?: string[]}`;
empty strings and empty arrays pass, extra keys pass and are stored as sent.
"""

from __future__ import annotations

from typing import Any

from .errors import validation


def check_descriptor(value: Any) -> None:
    """Raise 400 ValidationErrors naming the first field that does not fit."""
    problem = descriptor_problem(value)
    if problem:
        raise validation(f"file descriptor: {problem}")


def descriptor_problem(value: Any) -> str | None:
    if not isinstance(value, dict):
        return "must be a JSON object"
    if not isinstance(value.get("mimeType"), str):
        return "mimeType must be a string"
    accounts = value.get("accounts")
    if not isinstance(accounts, list):
        return "accounts must be an array of {accountId: string}"
    for i, account in enumerate(accounts):
        if not isinstance(account, dict) or not isinstance(account.get("accountId"), str):
            return f"accounts[{i}].accountId must be a string"
    for key in ("reference", "tags"):
        if key in value and not (
            isinstance(value[key], list) and all(isinstance(v, str) for v in value[key])
        ):
            return f"{key} must be an array of strings when present"
    return None

