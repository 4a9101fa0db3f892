"""One PDA's file metadata (`ApiHatFile`): parsing, the fileId slug rule, search.

Pure logic; the bytes live in the S3 stand-in (`s3.py`) under key `<pda-domain>/<fileId>`.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from typing import Any

_WORD = re.compile(r"\w+")
_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")


class MetadataError(ValueError):
    """The body does not read as ApiHatFile; `errors` maps JSON paths to Play messages."""

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__(", ".join(errors))
        self.errors = errors


@dataclass
class FileMeta:
    """What a client may send: the fields of ApiHatFile the HAT reads from a request."""

    name: str
    source: str
    file_id: str | None = None
    date_created: int | None = None
    last_updated: int | None = None
    tags: list[str] | None = None
    title: str | None = None
    description: str | None = None
    source_url: str | None = None
    status: str | None = None
    content_type: str | None = None


@dataclass
class StoredFile:
    file_id: str
    name: str
    source: str
    date_created: int
    last_updated: int
    tags: list[str] = field(default_factory=list)
    title: str | None = None
    description: str | None = None
    source_url: str | None = None
    status: str = "New"  # New | Completed | Deleted
    size: int | None = None
    content_type: str | None = None
    content_public: bool = False
    permissions: list[dict[str, Any]] = field(default_factory=list)

    def status_json(self) -> dict[str, Any]:
        if self.status == "Completed":
            return {"status": "Completed", "size": self.size or 0}
        return {"status": self.status}

    def to_json(self, *, owner_view: bool, content_url: str | None = None) -> dict[str, Any]:
        """ApiHatFile as the HAT writes it: absent options are left out, dates are epoch ms."""
        out: dict[str, Any] = {"fileId": self.file_id, "name": self.name, "source": self.source,
                               "dateCreated": self.date_created, "lastUpdated": self.last_updated,
                               "tags": list(self.tags)}
        for key, value in (("title", self.title), ("description", self.description),
                           ("sourceURL", self.source_url)):
            if value is not None:
                out[key] = value
        out["status"] = self.status_json()
        if content_url is not None:
            out["contentUrl"] = content_url
        if self.content_type is not None:
            out["contentType"] = self.content_type
        out["contentPublic"] = self.content_public
        if owner_view:
            out["permissions"] = [dict(p) for p in self.permissions]
        return out


def _date_ms(value: Any, path: str, errors: dict[str, str]) -> int | None:
    """Epoch milliseconds, or "yyyy-MM-dd" (midnight UTC); anything else is an error."""
    if value is None:
        return None
    if isinstance(value, int | float) and not isinstance(value, bool):
        return int(value)
    if isinstance(value, str) and _DAY.match(value):
        try:
            day = dt.datetime.strptime(value, "%Y-%m-%d").replace(tzinfo=dt.UTC)
        except ValueError:
            pass
        else:
            return int(day.timestamp() * 1000)
    errors[path] = "error.expected.jodadate.format"
    return None


def _opt_str(body: dict, key: str, errors: dict[str, str]) -> str | None:
    value = body.get(key)
    if value is None or isinstance(value, str):
        return value
    errors[f"obj.{key}"] = "error.expected.jsstring"
    return None


def parse_meta(body: Any) -> FileMeta:
    """Read an ApiHatFile; `name` and `source` are required. Raises MetadataError."""
    if not isinstance(body, dict):
        raise MetadataError({"obj": "error.expected.jsobject"})
    errors: dict[str, str] = {}
    for key in ("name", "source"):
        if key not in body or body[key] is None:
            errors[f"obj.{key}"] = "error.path.missing"
        elif not isinstance(body[key], str):
            errors[f"obj.{key}"] = "error.expected.jsstring"
    tags = body.get("tags")
    if tags is not None and not (isinstance(tags, list) and all(isinstance(t, str) for t in tags)):
        errors["obj.tags"] = "error.expected.jsarray"
        tags = None
    status = body.get("status")
    status_name = None
    if isinstance(status, dict) and isinstance(status.get("status"), str):
        status_name = status["status"]
    elif status is not None:
        errors["obj.status"] = "error.expected.jsobject"
    meta = FileMeta(
        name=body.get("name") if isinstance(body.get("name"), str) else "",
        source=body.get("source") if isinstance(body.get("source"), str) else "",
        file_id=_opt_str(body, "fileId", errors),
        date_created=_date_ms(body.get("dateCreated"), "obj.dateCreated", errors),
        last_updated=_date_ms(body.get("lastUpdated"), "obj.lastUpdated", errors),
        tags=tags,
        title=_opt_str(body, "title", errors),
        description=_opt_str(body, "description", errors),
        source_url=_opt_str(body, "sourceURL", errors),
        status=status_name,
        content_type=_opt_str(body, "contentType", errors),
    )
    if errors:
        raise MetadataError(errors)
    return meta


def slug(source: str, name: str) -> tuple[str, str]:
    """(slug, extension) of source+name: lower-case, `[^\\w ]` removed, spaces to '-'."""
    base, dot, ext = name.rpartition(".")
    if not dot:
        base, ext = name, ""
    text = re.sub(r"[^\w ]", "", (source + base).lower()).replace(" ", "-")
    return text or "file", re.sub(r"[^\w]", "", ext)


def _words(text: str | None) -> set[str]:
    return set(_WORD.findall((text or "").lower()))


def _text_match(query: str | None, value: str | None) -> bool:
    """Full-text-like: every word of the query occurs as a word of the value."""
    wanted = _words(query)
    return not wanted or wanted <= _words(value)


class FileStore:
    def __init__(self) -> None:
        self.files: dict[str, StoredFile] = {}

    def new_id(self, source: str, name: str) -> str:
        """`<slug>[-N].<ext>`: the first free id, counting files ever created (deleted too)."""
        base, ext = slug(source, name)
        suffix = f".{ext}" if ext else ""
        candidate, n = base + suffix, 0
        while candidate in self.files:
            n += 1
            candidate = f"{base}-{n}{suffix}"
        return candidate

    def create(self, meta: FileMeta, owner_user_id: str, now_ms: int) -> StoredFile:
        file_id = self.new_id(meta.source, meta.name)
        stored = StoredFile(
            file_id=file_id, name=meta.name, source=meta.source,
            date_created=meta.date_created if meta.date_created is not None else now_ms,
            last_updated=meta.last_updated if meta.last_updated is not None else now_ms,
            tags=list(meta.tags or []), title=meta.title, description=meta.description,
            source_url=meta.source_url, content_type=meta.content_type,
            permissions=[{"userId": owner_user_id, "contentReadable": True}],
        )
        self.files[file_id] = stored
        return stored

    def get(self, file_id: str) -> StoredFile | None:
        return self.files.get(file_id)

    def search(self, template: FileMeta) -> list[StoredFile]:
        out = []
        for f in self.files.values():
            if template.status is not None:
                if f.status != template.status:
                    continue
            elif f.status == "Deleted":
                continue
            if not (_text_match(template.name, f.name) and _text_match(template.source, f.source)
                    and _text_match(template.title, f.title)
                    and _text_match(template.description, f.description)):
                continue
            if template.tags and not set(template.tags) <= set(f.tags):
                continue
            out.append(f)
        return sorted(out, key=lambda f: (f.date_created, f.file_id))
