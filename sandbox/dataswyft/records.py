"""One PDA's data records: the `data_json` table, its unique hash index, and the read query.

Pure logic, no HTTP. The duplicate rule is the HAT's: SHA-256 of the compact JSON text of
`data`, unique across the whole PDA (all namespaces and endpoints), and every write is one
transaction: a duplicate anywhere rejects the whole write unless the caller skips errors.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any


class DuplicateData(Exception):
    """The unique index on the data hash refused a write."""


class RecordsMissing(Exception):
    """Some record ids do not exist on this PDA."""


def compact(data: Any) -> str:
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False)


def digest(data: Any) -> bytes:
    return hashlib.sha256(compact(data).encode("utf-8")).digest()


def jsonb(value: Any) -> Any:
    """Key order as PostgreSQL JSONB gives it back: shorter keys first, then bytewise."""
    if isinstance(value, dict):
        keys = sorted(value, key=lambda k: (len(k.encode()), k.encode()))
        return {k: jsonb(value[k]) for k in keys}
    if isinstance(value, list):
        return [jsonb(v) for v in value]
    return value


@dataclass
class Record:
    record_id: str
    endpoint: str  # "<namespace>/<endpoint>"
    data: Any
    hash: bytes
    seq: int  # write order; PUT moves a record to the end
    written_at: float
    links: list[str] = field(default_factory=list)

    @property
    def namespace(self) -> str:
        return self.endpoint.split("/", 1)[0]

    def to_json(self, *, as_stored: bool = True) -> dict[str, Any]:
        """The API shape; `as_stored` re-orders keys the way JSONB reads them back."""
        return {"endpoint": self.endpoint, "recordId": self.record_id,
                "data": jsonb(self.data) if as_stored else self.data}


@dataclass
class NewRecord:
    """One record to insert, possibly with linked records (data-batch)."""

    endpoint: str
    data: Any
    links: list[NewRecord] = field(default_factory=list)


class RecordStore:
    def __init__(self) -> None:
        self.records: dict[str, Record] = {}
        self._by_hash: dict[bytes, str] = {}
        self._seq = itertools.count(1)

    # -- writes ---------------------------------------------------------------------------

    def insert(self, items: Iterable[NewRecord], now: float, *,
               skip_errors: bool = False) -> list[tuple[Record, list[Record]]]:
        """Insert all items (and their links) atomically; returns (record, linked) pairs.

        A duplicate (against stored data or within the same write) raises DuplicateData and
        stores nothing, unless `skip_errors`, in which case that item is silently left out.
        """
        staged: dict[bytes, Record] = {}
        out: list[tuple[Record, list[Record]]] = []
        for item in items:
            try:
                out.append(self._stage(item, staged, now))
            except DuplicateData:
                if not skip_errors:
                    raise
        for record in staged.values():
            self.records[record.record_id] = record
            self._by_hash[record.hash] = record.record_id
        return out

    def _stage(self, item: NewRecord, staged: dict[bytes, Record],
               now: float) -> tuple[Record, list[Record]]:
        local: dict[bytes, Record] = {}

        def make(new: NewRecord) -> Record:
            h = digest(new.data)
            if h in self._by_hash or h in staged or h in local:
                raise DuplicateData(new.endpoint)
            rec = Record(str(uuid.uuid4()), new.endpoint, new.data, h, next(self._seq), now)
            local[h] = rec
            return rec

        parent = make(item)
        linked = [make(link) for link in item.links]
        parent.links = [r.record_id for r in linked]
        for rec in linked:
            rec.links = [parent.record_id]
        staged.update(local)
        return parent, linked

    def update(self, changes: list[tuple[str, Any]], now: float) -> list[Record]:
        """Replace `data` of existing records; all or nothing. Resets their write time."""
        changes = list(dict(changes).items())  # the same id twice: the last change wins
        targets = [self.records.get(rid) for rid, _ in changes]
        if any(t is None for t in targets):
            raise RecordsMissing()
        touched = {t.record_id for t in targets if t is not None}
        new_hashes: dict[bytes, str] = {}
        for (rid, data) in changes:
            h = digest(data)
            owner = self._by_hash.get(h)
            if (owner is not None and owner not in touched) or h in new_hashes:
                raise DuplicateData(rid)
            new_hashes[h] = rid
        for rec in targets:
            assert rec is not None
            self._by_hash.pop(rec.hash, None)
        out = []
        for (rid, data), h in zip(changes, new_hashes, strict=True):
            rec = self.records[rid]
            rec.data, rec.hash, rec.seq, rec.written_at = data, h, next(self._seq), now
            self._by_hash[h] = rid
            out.append(rec)
        return out

    def delete(self, ids: list[str]) -> None:
        if any(rid not in self.records for rid in ids):
            raise RecordsMissing()
        for rid in ids:
            self._drop(rid)

    def delete_endpoint(self, endpoint: str) -> int:
        ids = [r.record_id for r in self.records.values() if r.endpoint == endpoint]
        for rid in ids:
            self._drop(rid)
        return len(ids)

    def _drop(self, rid: str) -> None:
        rec = self.records.pop(rid, None)
        if rec is not None:
            self._by_hash.pop(rec.hash, None)

    # -- reads ----------------------------------------------------------------------------

    def get(self, rid: str) -> Record | None:
        return self.records.get(rid)

    def sources(self) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for rec in sorted(self.records.values(), key=lambda r: r.seq):
            ns, _, ep = rec.endpoint.partition("/")
            if ep not in out.setdefault(ns, []):
                out[ns].append(ep)
        return out

    def query(self, endpoint: str | None, *, order_by: str | None = None,
              descending: bool = False, skip: int = 0, take: int = 1000,
              filter_key: str | None = None, filter_value: str | None = None) -> list[Record]:
        """GET /data semantics: order, then skip/take, then the single filter."""
        rows = [r for r in self.records.values() if endpoint is None or r.endpoint == endpoint]
        rows.sort(key=lambda r: r.seq)
        if order_by:
            present = [r for r in rows if _path(r.data, order_by) is not _MISSING]
            absent = [r for r in rows if _path(r.data, order_by) is _MISSING]
            present.sort(key=lambda r: _order_key(_path(r.data, order_by)), reverse=descending)
            rows = present + absent  # nulls last, in either direction
        rows = rows[skip:skip + take]
        if filter_key is not None:
            rows = [r for r in rows if _matches(r.data, filter_key, filter_value or "")]
        return rows


_MISSING = object()


def _path(data: Any, dotted: str) -> Any:
    cur = data
    for part in dotted.split("."):
        if isinstance(cur, dict) and part in cur:
            cur = cur[part]
        else:
            return _MISSING
    return cur


def _order_key(value: Any) -> tuple[int, Any]:
    """JSONB btree order: null < string < number < boolean < array < object."""
    if value is None:
        return (0, 0)
    if isinstance(value, str):
        return (1, value)
    if isinstance(value, bool):
        return (3, value)
    if isinstance(value, int | float):
        return (2, value)
    if isinstance(value, list):
        return (4, compact(value))
    return (5, compact(value))


def _as_text(value: Any) -> str | None:
    """`#>>` text of a JSON value (strings unquoted)."""
    if value is _MISSING or value is None:
        return None
    if isinstance(value, str):
        return value
    return compact(value) if not isinstance(value, bool) else ("true" if value else "false")


def _matches(data: Any, key: str, value: str) -> bool:
    if "." in key:
        return _as_text(_path(data, key)) == value
    return _contains_key_value(data, key, value)


def _contains_key_value(data: Any, key: str, value: str) -> bool:
    if isinstance(data, dict):
        if data.get(key) == value:
            return True
        return any(_contains_key_value(v, key, value) for v in data.values())
    if isinstance(data, list):
        return any(_contains_key_value(v, key, value) for v in data)
    return False
