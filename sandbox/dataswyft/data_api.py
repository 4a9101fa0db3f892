"""Data API (`/api/v2.6/data...`, also `/api/v2` and `/api/v2.0`): records in, records out.

Status codes and both error envelopes follow protocol notes §5; the quirks are kept on
purpose (PDA-wide duplicate index, a 500 for an empty batch or a PUT without rights, the
first unknown query key on GET acting as a filter, applied after skip/take).
"""

from __future__ import annotations

import re
import uuid
from typing import Any

from starlette.responses import JSONResponse, Response

from . import errors
from .errors import ApiError
from .records import DuplicateData, NewRecord, Record, RecordsMissing
from .routing import API, API26, EP, NS, Call, Router

_ENDPOINT = re.compile(r"^[0-9a-z-]+/[0-9a-z-/]+$")
_KNOWN_QUERY = {"orderBy", "ordering", "skip", "take"}
DUPLICATE = "Duplicate data - Duplicate data"
BATCH_DUPLICATE = "Could not insert data - Duplicate data"
BATCH_DENIED = "Access Denied - No rights to insert some or all of the data in the batch"
DELETE_DENIED = "Access Denied - Permissions to modify records in some of the namespaces missing"
DELETE_MISSING = "Could not delete records: Records missing for deleting"
UPDATE_MISSING = "Could not update records: Records missing for updating"


def _post_json(rec: Record) -> dict[str, Any]:
    return {**rec.to_json(as_stored=False), "links": []}


def _uuid(value: str, name: str) -> str:
    try:
        return str(uuid.UUID(value))
    except ValueError:
        raise ApiError(errors.bind_error(name, "UUID", value)) from None


def _int_param(call: Call, name: str, default: int) -> int:
    raw = call.request.query_params.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ApiError(errors.bind_error(name, "Int", raw)) from None
    if value < 0:
        raise ApiError(errors.bad_request(f"Cannot parse parameter {name}: must not be negative"))
    return value


def _skip_errors(call: Call) -> bool:
    raw = call.request.query_params.get("skipErrors")
    if raw is None:
        return False
    if raw.lower() not in ("true", "false"):
        raise ApiError(errors.bind_error("skipErrors", "Boolean", raw))
    return raw.lower() == "true"


async def create(call: Call) -> Response:
    ns, ep = call.params["ns"], call.params["ep"]
    call.require("namespacewrite", ns)
    skip = _skip_errors(call)
    endpoint = f"{ns}/{ep}"
    many = isinstance(call.body, list)
    items = [NewRecord(endpoint, d) for d in (call.body if many else [call.body])]
    try:
        saved = call.pda.records.insert(items, call.now, skip_errors=skip and many)
    except DuplicateData:
        raise ApiError(errors.controller(400, "Bad Request", DUPLICATE)) from None
    if many:
        return JSONResponse([_post_json(r) for r, _ in saved], status_code=201)
    return JSONResponse(_post_json(saved[0][0]), status_code=201)


async def read(call: Call) -> Response:
    ns, ep = call.params["ns"], call.params["ep"]
    call.require("namespaceread", ns)
    q = call.request.query_params
    filter_key = filter_value = None
    for key, value in q.multi_items():
        if key not in _KNOWN_QUERY:
            filter_key, filter_value = key, value
            break
    rows = call.pda.records.query(
        f"{ns}/{ep}", order_by=q.get("orderBy") or None,
        descending=q.get("ordering") == "descending",
        skip=_int_param(call, "skip", 0), take=_int_param(call, "take", 1000),
        filter_key=filter_key, filter_value=filter_value)
    return JSONResponse([r.to_json() for r in rows])


async def sources(call: Call) -> Response:
    call.require("owner")
    return JSONResponse(call.pda.records.sources())


async def data_record(call: Call) -> Response:
    rid = _uuid(call.params["id"], "recordId")
    rec = call.pda.records.get(rid)
    if rec is None:
        raise ApiError(errors.controller(400, "Data Missing", f"Record {rid} not found"))
    return JSONResponse(rec.to_json())


def _batch_item(raw: Any, path: str, problems: dict[str, str]) -> NewRecord | None:
    if not isinstance(raw, dict):
        problems[path] = "error.expected.jsobject"
        return None
    endpoint = raw.get("endpoint")
    if endpoint is None:
        problems[f"{path}.endpoint"] = "error.path.missing"
    elif not isinstance(endpoint, str):
        problems[f"{path}.endpoint"] = "error.expected.jsstring"
    elif not _ENDPOINT.match(endpoint):
        problems[f"{path}.endpoint"] = "error.pattern"
    if "data" not in raw:
        problems[f"{path}.data"] = "error.path.missing"
    links_raw = raw.get("links") or []
    links = []
    if not isinstance(links_raw, list):
        problems[f"{path}.links"] = "error.expected.jsarray"
    else:
        for i, link in enumerate(links_raw):
            item = _batch_item(link, f"{path}.links[{i}]", problems)
            if item is not None:
                links.append(item)
    if isinstance(endpoint, str):
        return NewRecord(endpoint, raw.get("data"), links)
    return None


def _namespaces(items: list[NewRecord]) -> set[str]:
    out: set[str] = set()
    for item in items:
        out.add(item.endpoint.split("/", 1)[0])
        out |= _namespaces(item.links)
    return out


async def batch(call: Call) -> Response:
    if not isinstance(call.body, list):
        raise ApiError(errors.validation({"obj": "error.expected.jsarray"}))
    problems: dict[str, str] = {}
    items = [_batch_item(raw, f"obj[{i}]", problems) for i, raw in enumerate(call.body)]
    if problems:
        raise ApiError(errors.validation(problems))
    records = [i for i in items if i is not None]
    if not records:
        raise ApiError(errors.server_error(), renew=False)  # the HAT's permission check crashes
    namespaces = _namespaces(records)
    who = call.who
    some_write = who is not None and (who.is_owner or call.allowed("namespacewrite", "*"))
    if not some_write or not all(call.allowed("namespacewrite", ns) for ns in namespaces):
        raise ApiError(errors.controller(
            403, "Forbidden", BATCH_DENIED))
    try:
        saved = call.pda.records.insert(records, call.now)
    except DuplicateData:
        raise ApiError(errors.controller(400, "Bad Request", BATCH_DUPLICATE)) from None
    out = [{**parent.to_json(as_stored=False),
            "links": [r.to_json(as_stored=False) for r in linked]} for parent, linked in saved]
    return JSONResponse(out, status_code=201)


async def update(call: Call) -> Response:
    body = call.body
    if not isinstance(body, list):
        raise ApiError(errors.validation({"obj": "error.expected.jsarray"}))
    problems: dict[str, str] = {}
    changes: list[tuple[str, str, Any]] = []
    missing_id = False
    for i, raw in enumerate(body):
        item = _batch_item(raw, f"obj[{i}]", problems)
        if item is None:
            continue
        rid = raw.get("recordId")
        if rid is None:
            missing_id = True
            continue
        try:
            changes.append((str(uuid.UUID(str(rid))), item.endpoint, item.data))
        except ValueError:
            problems[f"obj[{i}].recordId"] = "error.expected.uuid"
    if problems:
        raise ApiError(errors.validation(problems))
    if any(not call.allowed("namespacewrite", ep.split("/", 1)[0]) for _, ep, _ in changes):
        raise ApiError(errors.server_error(), renew=False)  # not caught by the HAT: 500
    missing = errors.controller(400, "Data Missing", UPDATE_MISSING)
    if missing_id:
        raise ApiError(missing)
    try:
        updated = call.pda.records.update([(rid, data) for rid, _, data in changes], call.now)
    except RecordsMissing:
        raise ApiError(missing) from None
    except DuplicateData:
        raise ApiError(errors.server_error(), renew=False) from None  # unique index error
    return JSONResponse([r.to_json(as_stored=False) for r in updated], status_code=201)


async def delete_records(call: Call) -> Response:
    ids = [_uuid(v, "records") for v in call.request.query_params.getlist("records")]
    store = call.pda.records
    found = [store.get(rid) for rid in ids]
    namespaces = {r.namespace for r in found if r is not None}
    if not all(call.allowed("namespacewrite", ns) for ns in namespaces):
        raise ApiError(errors.controller(
            403, "Forbidden", DELETE_DENIED))
    try:
        store.delete(ids)
    except RecordsMissing:
        raise ApiError(errors.controller(400, "Data Missing", DELETE_MISSING)) from None
    return JSONResponse({"message": "All records deleted"})


async def delete_endpoint(call: Call) -> Response:
    ns, ep = call.params["ns"], call.params["ep"]
    call.require("namespacewrite", ns)
    call.pda.records.delete_endpoint(f"{ns}/{ep}")
    return JSONResponse({"message": "All records deleted"})


def register(router: Router) -> None:
    data = f"{API}/data/{NS}/{EP}"
    router.add("POST", data, create, body=True)
    router.add("GET", data, read)
    router.add("DELETE", data, delete_endpoint)
    router.add("GET", f"{API}/data/sources", sources)
    router.add("PUT", f"{API}/data", update, body=True)
    router.add("DELETE", f"{API}/data", delete_records)
    router.add("POST", f"{API}/data-batch", batch, body=True)
    router.add("GET", f"{API26}/data-record/(?P<id>[^/]+)", data_record)
