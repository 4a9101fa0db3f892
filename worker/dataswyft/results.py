"""What the client's calls return: data plus the renewed token.

Every authenticated PDA answer re-signs the token with a fresh `iat`; the caller must store
`new_token` (None only when the PDA sent none). Reprs show counts and ids, never record data,
tokens or presigned URLs, because these objects end up in logs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


def _token_state(token: str | None) -> str:
    return "<renewed>" if token else "None"


@dataclass(frozen=True)
class RecordsResult:
    """Records as the PDA returned them (`endpoint`, `recordId`, `data`, `links`?)."""

    records: list[dict[str, Any]] = field(repr=False)
    new_token: str | None = field(repr=False)

    @property
    def record_ids(self) -> list[str]:
        return [r["recordId"] for r in self.records if isinstance(r.get("recordId"), str)]

    def __repr__(self) -> str:
        return f"RecordsResult(records={len(self.records)}, new_token={_token_state(self.new_token)})"


@dataclass(frozen=True)
class UploadTicket:
    """Step 1 of a file upload. `content_url` is a presigned S3 PUT URL valid for about five
    minutes; its query is a credential. `metadata` is the PDA's answer without `contentUrl`."""

    file_id: str
    content_url: str = field(repr=False)
    metadata: dict[str, Any] = field(repr=False)
    new_token: str | None = field(repr=False)

    @property
    def content_type(self) -> str | None:
        value = self.metadata.get("contentType")
        return value if isinstance(value, str) and value else None

    def __repr__(self) -> str:
        return f"UploadTicket(file_id={self.file_id!r}, new_token={_token_state(self.new_token)})"


@dataclass(frozen=True)
class FileResult:
    """File metadata (`fileId`, `status`, …) and the renewed token."""

    metadata: dict[str, Any] = field(repr=False)
    new_token: str | None = field(repr=False)

    @property
    def file_id(self) -> str | None:
        value = self.metadata.get("fileId")
        return value if isinstance(value, str) else None

    @property
    def status(self) -> str | None:
        status = self.metadata.get("status")
        return status.get("status") if isinstance(status, dict) else None

    @property
    def size(self) -> int | None:
        status = self.metadata.get("status")
        size = status.get("size") if isinstance(status, dict) else None
        return size if isinstance(size, int) else None

    def __repr__(self) -> str:
        return (f"FileResult(file_id={self.file_id!r}, status={self.status!r}, "
                f"new_token={_token_state(self.new_token)})")
