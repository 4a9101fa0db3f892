"""The current library push (§7.1): plaintext body, metadata in a signed header.

`POST permission-access/import` with `Content-Type: application/octet-stream` and a
`FileDescriptor` header: a PS512 JWT whose only claim is `metadata` (no nonce, timestamp or
client_id). Unlike the SDK (chunked), the body is sent with an exact Content-Length.
"""

from __future__ import annotations

from typing import Any

from .contract import ContractKey


def file_descriptor_header(key: ContractKey, descriptor: dict[str, Any]) -> str:
    return key.sign({"metadata": descriptor})


def import_headers(*, bearer: str, file_descriptor: str, size: int) -> dict[str, str]:
    return {
        "Authorization": f"Bearer {bearer}",
        "Content-Type": "application/octet-stream",
        "FileDescriptor": file_descriptor,
        "Content-Length": str(size),
    }
