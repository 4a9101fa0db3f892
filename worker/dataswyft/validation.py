"""Input checks for Data API and File API calls, done before any request.

The PDA's answers to bad input are unhelpful (an HTML page for a bad namespace on GET, a
route miss on POST, a 500 for an empty batch), so datapost refuses such input itself with a
ValidationError that names the field. Messages never quote record data.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

from ..errors import ValidationError

MAX_BODY = 10 * 1024 * 1024  # play.http.parser.maxMemoryBuffer on the HAT
_NAMESPACE = re.compile(r"[0-9a-z-]+")
_ENDPOINT = re.compile(r"[0-9a-z-/]+")
_META_STRINGS = ("title", "description", "contentType", "sourceURL")
_META_DATES = ("dateCreated", "lastUpdated")
_META_KEYS = frozenset(("name", "source", "tags", *_META_STRINGS, *_META_DATES))
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def _show(value: object) -> str:
    text = value if isinstance(value, str) else type(value).__name__
    return repr(text if len(text) <= 60 else text[:60] + "…")


def validate_namespace(ns: object, *, field: str = "namespace") -> str:
    if not isinstance(ns, str) or not ns:
        raise ValidationError(f"{field} must be a non-empty string")
    if not _NAMESPACE.fullmatch(ns):
        raise ValidationError(f"{field} {_show(ns)} may contain only lower-case letters, digits "
                              "and '-'")
    return ns


def validate_endpoint(ep: object, *, field: str = "endpoint") -> str:
    if not isinstance(ep, str) or not ep:
        raise ValidationError(f"{field} must be a non-empty string")
    if not _ENDPOINT.fullmatch(ep):
        raise ValidationError(f"{field} {_show(ep)} may contain only lower-case letters, digits, "
                              "'-' and '/'")
    if ep.startswith("/") or ep.endswith("/") or "//" in ep:
        raise ValidationError(f"{field} {_show(ep)} must not start or end with '/' or contain '//'")
    return ep


def _compact(value: Any, field: str) -> bytes:
    try:
        text = json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    except ValueError:
        raise ValidationError(f"{field} contains a number that is not finite (NaN or infinity)") from None
    except (TypeError, RecursionError) as exc:
        kind = "is nested too deeply" if isinstance(exc, RecursionError) else \
            "is not JSON-serialisable (only dict, list, str, int, float, bool and None)"
        raise ValidationError(f"{field} {kind}") from None
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        raise ValidationError(f"{field} contains a string that is not valid Unicode "
                              "(a lone surrogate)") from None


def _check_keys(value: Any, field: str) -> None:
    """JSON object keys must be strings (json.dumps would silently turn 1 into "1")."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            if not all(isinstance(k, str) for k in item):
                raise ValidationError(f"{field} has an object key that is not a string")
            stack.extend(item.values())
        elif isinstance(item, list | tuple):
            stack.extend(item)
        elif isinstance(item, float) and not math.isfinite(item):
            raise ValidationError(f"{field} contains a number that is not finite (NaN or infinity)")


def _sized(body: bytes, field: str, max_bytes: int) -> bytes:
    if len(body) > max_bytes:
        raise ValidationError(f"{field} is {len(body)} bytes as compact JSON; the PDA accepts at "
                              f"most {max_bytes}")
    return body


def validate_record_data(data: object, max_bytes: int = MAX_BODY, *, field: str = "data") -> bytes:
    """The compact JSON bytes to POST (what the PDA hashes for its duplicate check)."""
    if isinstance(data, list) and not data:
        raise ValidationError(f"{field} is an empty list: there is nothing to write")
    _check_keys(data, field)
    return _sized(_compact(data, field), field, max_bytes)


def _check_batch_item(item: object, field: str) -> None:
    if not isinstance(item, dict):
        raise ValidationError(f"{field} must be an object with endpoint and data")
    unknown = sorted(set(item) - {"endpoint", "data", "links"}, key=str)
    if unknown:
        raise ValidationError(f"{field} has unknown key {_show(unknown[0])} (allowed: endpoint, "
                              "data, links)")
    endpoint = item.get("endpoint")
    if not isinstance(endpoint, str) or "/" not in endpoint:
        raise ValidationError(f"{field}.endpoint must be a string '<namespace>/<endpoint>'")
    ns, _, ep = endpoint.partition("/")
    validate_namespace(ns, field=f"{field}.endpoint namespace")
    validate_endpoint(ep, field=f"{field}.endpoint")
    if "data" not in item:
        raise ValidationError(f"{field}.data is required")
    links = item.get("links", [])
    if not isinstance(links, list):
        raise ValidationError(f"{field}.links must be a list of items")
    for index, link in enumerate(links):
        _check_batch_item(link, f"{field}.links[{index}]")


def validate_batch(items: object, max_bytes: int = MAX_BODY) -> bytes:
    """The compact JSON bytes of a data-batch body. An empty batch is refused (the HAT's
    permission check crashes on it with a 500)."""
    if not isinstance(items, list):
        raise ValidationError("items must be a list of {endpoint, data, links?} objects")
    if not items:
        raise ValidationError("items is empty: a batch needs at least one item")
    for index, item in enumerate(items):
        _check_batch_item(item, f"items[{index}]")
    _check_keys(items, "items")
    return _sized(_compact(items, "items"), "items", max_bytes)


def validate_file_metadata(meta: object) -> dict[str, Any]:
    """A copy of the upload metadata with only the fields a client may set."""
    if not isinstance(meta, dict):
        raise ValidationError("file metadata must be an object")
    unknown = sorted(set(meta) - _META_KEYS, key=str)
    if unknown:
        raise ValidationError(f"file metadata has unknown or server-set field {_show(unknown[0])} "
                              f"(allowed: {', '.join(sorted(_META_KEYS))})")
    for name in ("name", "source"):
        value = meta.get(name)
        if not isinstance(value, str) or not value.strip():
            raise ValidationError(f"file metadata {name} is required and must be a non-empty string")
    for name in _META_STRINGS:
        if name in meta and not isinstance(meta[name], str):
            raise ValidationError(f"file metadata {name} must be a string")
    if "contentType" in meta and not meta["contentType"].strip():
        raise ValidationError("file metadata contentType must not be empty when given")
    if "tags" in meta:
        tags = meta["tags"]
        if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
            raise ValidationError("file metadata tags must be a list of strings")
    for name in _META_DATES:
        if name in meta:
            value = meta[name]
            ok = (isinstance(value, int) and not isinstance(value, bool) and value >= 0) or \
                (isinstance(value, str) and _DATE.fullmatch(value))
            if not ok:
                raise ValidationError(f"file metadata {name} must be epoch milliseconds or "
                                      "'yyyy-MM-dd'")
    _sized(_compact(meta, "file metadata"), "file metadata", MAX_BODY)
    return dict(meta)
