"""File Storage API (`/api/v2.6/files/...`): metadata here, bytes in the S3 stand-in.

Upload is the HAT's three steps: metadata -> presigned S3 PUT (5 minutes) -> complete,
which checks the object really holds bytes. Protocol notes §6.
"""

from __future__ import annotations

import uuid

from starlette.responses import JSONResponse, RedirectResponse, Response

from . import errors
from .errors import ApiError
from .filestore import FileMeta, MetadataError, StoredFile, parse_meta
from .routing import API, Call, Router

FID = r"(?P<id>[^/]+)"


def _key(call: Call, file_id: str) -> str:
    return f"{call.pda.domain}/{file_id}"


def _no_such_file(file_id: str) -> ApiError:
    return ApiError(errors.controller(404, "No such file", f"File {file_id} not found"))


def _meta(call: Call) -> FileMeta:
    try:
        return parse_meta(call.body)
    except MetadataError as exc:
        raise ApiError(errors.validation(exc.errors)) from None


def _file(call: Call, *, allow_deleted: bool = False) -> StoredFile:
    file_id = call.params["id"]
    f = call.pda.files.get(file_id)
    if f is None or (f.status == "Deleted" and not allow_deleted):
        raise _no_such_file(file_id)
    return f


def _readable(call: Call, f: StoredFile) -> bool:
    """Tokens of this PDA act as its owner, who holds contentReadable; others need public."""
    return f.status == "Completed" and (f.content_public or call.who is not None)


def _view(call: Call, f: StoredFile, *, with_url: bool = False) -> dict:
    url = None
    if with_url and _readable(call, f) and call.state.objects.head(_key(call, f.file_id)):
        url = call.state.presigner.url(call.pda.url, _key(call, f.file_id), "GET", call.now)
    return f.to_json(owner_view=bool(call.who and call.who.is_owner), content_url=url)


async def upload(call: Call) -> Response:
    call.require("managefiles", "*")
    meta = _meta(call)
    f = call.pda.files.create(meta, call.pda.user_id, int(call.now * 1000))
    url = call.state.presigner.url(call.pda.url, _key(call, f.file_id), "PUT", call.now,
                                   content_type=meta.content_type)
    return JSONResponse(f.to_json(owner_view=bool(call.who and call.who.is_owner), content_url=url))


async def complete(call: Call) -> Response:
    call.require("managefiles", "*")
    f = _file(call)
    obj = call.state.objects.head(_key(call, f.file_id))
    if obj is None or obj.size <= 0:
        raise ApiError(errors.controller(
            400, "File not available", "Not fully uploaded file can not be completed"))
    f.status, f.size = "Completed", obj.size
    return JSONResponse(_view(call, f))


async def get_file(call: Call) -> Response:
    f = call.pda.files.get(call.params["id"])
    if f is None:
        raise _no_such_file(call.params["id"])
    if f.status == "Deleted":
        raise ApiError(errors.controller(404, "File not available",
                                         f"File {f.file_id} has been deleted"))
    return JSONResponse(_view(call, f, with_url=True))


async def content(call: Call) -> Response:
    f = call.pda.files.get(call.params["id"])
    if f is None or not _readable(call, f) or not call.state.objects.head(_key(call, f.file_id)):
        return Response(b"", status_code=404)
    url = call.state.presigner.url(call.pda.url, _key(call, f.file_id), "GET", call.now)
    return RedirectResponse(url, status_code=303)


async def search(call: Call) -> Response:
    template = _meta(call)
    return JSONResponse([_view(call, f) for f in call.pda.files.search(template)])


async def update_file(call: Call) -> Response:
    call.require("managefiles", "*")
    meta = _meta(call)
    if meta.file_id is None:  # the body's fileId decides; the path id is ignored
        raise ApiError(errors.controller(400, "Error updating file", "Unexpected exception"))
    f = call.pda.files.get(meta.file_id)
    if f is None or f.status == "Deleted":
        raise _no_such_file(meta.file_id)
    f.name = meta.name
    f.tags = list(meta.tags or [])
    f.title, f.description = meta.title, meta.description
    f.last_updated = meta.last_updated if meta.last_updated is not None else int(call.now * 1000)
    return JSONResponse(_view(call, f))


async def delete_file(call: Call) -> Response:
    call.require("managefiles", "*")
    f = _file(call)
    call.state.objects.delete(_key(call, f.file_id))
    f.status, f.size = "Deleted", None
    return JSONResponse(_view(call, f))


async def make_public(call: Call) -> Response:
    """allowAccessPublic and, by the HAT's route bug, restrictAccessPublic too."""
    call.require("managefiles", "*")
    f = _file(call)
    f.content_public = True
    return JSONResponse(_view(call, f))


def _user_id(call: Call) -> str:
    raw = call.params["user"]
    try:
        return str(uuid.UUID(raw))
    except ValueError:
        raise ApiError(errors.bind_error("userId", "UUID", raw)) from None


async def allow_access(call: Call) -> Response:
    call.require("managefiles", "*")
    f = _file(call)
    user = _user_id(call)
    readable = call.request.query_params.get("content", "false").lower() == "true"
    f.permissions = [p for p in f.permissions if p["userId"] != user]
    f.permissions.append({"userId": user, "contentReadable": readable})
    return JSONResponse(_view(call, f))


async def restrict_access(call: Call) -> Response:
    call.require("managefiles", "*")
    f = _file(call)
    user = _user_id(call)
    f.permissions = [p for p in f.permissions if p["userId"] != user]
    return JSONResponse(_view(call, f))


def register(router: Router) -> None:
    files = f"{API}/files"
    router.add("POST", f"{files}/upload", upload, body=True)
    router.add("PUT", f"{files}/file/{FID}/complete", complete)
    router.add("GET", f"{files}/file/{FID}", get_file)
    router.add("PUT", f"{files}/file/{FID}", update_file, body=True)
    router.add("DELETE", f"{files}/file/{FID}", delete_file)
    router.add("GET", f"{files}/content/{FID}", content, auth="optional")
    router.add("POST", f"{files}/search", search, body=True)
    router.add("GET", f"{files}/allowAccessPublic/{FID}", make_public)
    router.add("GET", f"{files}/restrictAccessPublic/{FID}", make_public)
    router.add("GET", f"{files}/allowAccess/{FID}/(?P<user>[^/]+)", allow_access)
    router.add("GET", f"{files}/restrictAccess/{FID}/(?P<user>[^/]+)", restrict_access)
