"""File Storage API with the in-process S3 stand-in: the three upload steps, SSE and
Content-Type checks, presigned-URL expiry on the sandbox clock, complete on an empty object,
reading back, public access, search, update, delete, and the control views."""

from __future__ import annotations

import hashlib
import os
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from tests.sandbox.test_pda_support import (
    api,
    auth,
    mint,
    new_app,
    pda,
    reset_clock,
    shift_clock,
    uid,
)

SSE = {"x-amz-server-side-encryption": "AES256"}


@pytest.fixture
def files_app(sandbox):
    p = pda(sandbox)
    return p, mint(p, new_app(p, ["managefiles:*"]))


def upload_meta(p: dict, token: str, **meta) -> dict:
    body = {"name": f"f-{uid()}.txt", "source": "tests", **meta}
    resp = httpx.post(f"{api(p)}/files/upload", json=body, headers=auth(token))
    assert resp.status_code == 200, resp.text
    return resp.json()


def test_three_step_upload_and_read_back(files_app):
    p, token = files_app
    meta = upload_meta(p, token, tags=["a", "b"], title="T")
    assert meta["status"] == {"status": "New"} and meta["contentPublic"] is False
    assert "permissions" not in meta  # only owner tokens see permissions
    assert isinstance(meta["dateCreated"], int) and isinstance(meta["lastUpdated"], int)
    url = urlsplit(meta["contentUrl"])
    assert f"{url.scheme}://{url.netloc}" == p["url"]
    assert url.path == f"/_s3/{p['domain']}/{meta['fileId']}"
    assert parse_qs(url.query)["X-Amz-Expires"] == ["300"]
    content = os.urandom(5000)
    put = httpx.put(meta["contentUrl"], content=content, headers={**SSE, "Content-Type": "x/y"})
    assert put.status_code == 200 and put.content == b"" and put.headers["etag"]
    done = httpx.put(f"{api(p)}/files/file/{meta['fileId']}/complete", headers=auth(token))
    assert done.status_code == 200
    assert done.json()["status"] == {"status": "Completed", "size": 5000}
    assert "contentUrl" not in done.json()
    got = httpx.get(f"{api(p)}/files/file/{meta['fileId']}", headers=auth(token)).json()
    blob = httpx.get(got["contentUrl"])
    assert blob.status_code == 200 and blob.content == content
    redirect = httpx.get(f"{api(p)}/files/content/{meta['fileId']}", headers=auth(token))
    assert redirect.status_code == 303
    assert httpx.get(redirect.headers["location"]).content == content
    anonymous = httpx.get(f"{api(p)}/files/content/{meta['fileId']}")
    assert anonymous.status_code == 404 and anonymous.content == b""
    listed = httpx.get(p["url"] + "/_control/files").json()["files"]
    mine = next(f for f in listed if f["fileId"] == meta["fileId"])
    assert mine["sha256"] == hashlib.sha256(content).hexdigest() and mine["size"] == 5000
    raw = httpx.get(p["url"] + f"/_control/files/{meta['fileId']}/content")
    assert raw.content == content


def test_owner_sees_permissions_and_file_ids_follow_the_slug_rule(sandbox):
    p = pda(sandbox)
    owner = mint(p)
    source = f"Src {uid()}"
    first = upload_meta(p, owner, name="My Photo!.png", source=source)
    second = upload_meta(p, owner, name="My Photo!.png", source=source)
    slug = (source.lower() + "my photo").replace(" ", "-")
    assert first["fileId"] == f"{slug}.png" and second["fileId"] == f"{slug}-1.png"
    info = httpx.get(p["url"] + "/_control/info").json()
    assert first["permissions"] == [{"userId": info["userId"], "contentReadable": True}]


def test_s3_put_needs_the_sse_header_and_the_signed_content_type(files_app):
    p, token = files_app
    meta = upload_meta(p, token, contentType="text/plain")
    no_sse = httpx.put(meta["contentUrl"], content=b"x", headers={"Content-Type": "text/plain"})
    assert no_sse.status_code == 403 and b"<Code>SignatureDoesNotMatch</Code>" in no_sse.content
    wrong_type = httpx.put(meta["contentUrl"], content=b"x", headers={**SSE, "Content-Type": "a/b"})
    assert wrong_type.status_code == 403
    tampered = meta["contentUrl"].replace("X-Amz-Signature=", "X-Amz-Signature=0")
    assert httpx.put(tampered, content=b"x", headers={**SSE, "Content-Type": "text/plain"}
                     ).status_code == 403
    ok = httpx.put(meta["contentUrl"], content=b"x", headers={**SSE, "Content-Type": "text/plain"})
    assert ok.status_code == 200


def test_presigned_url_expires_after_five_minutes(sandbox, files_app):
    p, token = files_app
    meta = upload_meta(p, token)
    shift_clock(sandbox, 301)
    try:
        late = httpx.put(meta["contentUrl"], content=b"late", headers=SSE)
        assert late.status_code == 403 and b"Request has expired" in late.content
    finally:
        reset_clock(sandbox)
    assert httpx.put(meta["contentUrl"], content=b"late", headers=SSE).status_code == 200


def test_complete_needs_a_non_empty_object(files_app):
    p, token = files_app
    meta = upload_meta(p, token)
    complete = f"{api(p)}/files/file/{meta['fileId']}/complete"
    not_uploaded = httpx.put(complete, headers=auth(token))
    expected = {"message": "File not available",
                "cause": "Not fully uploaded file can not be completed"}
    assert not_uploaded.status_code == 400 and not_uploaded.json() == expected
    assert httpx.put(meta["contentUrl"], content=b"", headers=SSE).status_code == 200
    empty = httpx.put(complete, headers=auth(token))
    assert empty.status_code == 400 and empty.json() == expected
    unknown = httpx.put(f"{api(p)}/files/file/nope-{uid()}.txt/complete", headers=auth(token))
    assert unknown.status_code == 404 and unknown.json()["message"] == "No such file"


def test_managefiles_is_required_to_upload(sandbox):
    p = pda(sandbox)
    token = mint(p, new_app(p, ["namespacewrite:x"]))
    resp = httpx.post(f"{api(p)}/files/upload", json={"name": "a.txt", "source": "s"},
                      headers=auth(token))
    assert resp.status_code == 403 and resp.json() == {"error": "Forbidden",
                                                       "message": "Access Denied"}
    missing = httpx.post(f"{api(p)}/files/upload", json={"name": "a.txt"}, headers=auth(mint(p)))
    assert missing.status_code == 400
    assert missing.json()["message"] == {"obj.source": [{"msg": ["error.path.missing"],
                                                         "args": []}]}


def test_public_search_update_and_delete(files_app):
    p, token = files_app
    tag = uid()
    meta = upload_meta(p, token, source="search-src", tags=[tag, "x"])
    httpx.put(meta["contentUrl"], content=b"hello", headers=SSE)
    httpx.put(f"{api(p)}/files/file/{meta['fileId']}/complete", headers=auth(token))
    found = httpx.post(f"{api(p)}/files/search", headers=auth(token),
                       json={"name": "", "source": "search-src", "tags": [tag]}).json()
    assert [f["fileId"] for f in found] == [meta["fileId"]]
    none = httpx.post(f"{api(p)}/files/search", headers=auth(token),
                      json={"name": "", "source": "", "tags": [tag, "absent"]}).json()
    assert none == []
    public = httpx.get(f"{api(p)}/files/restrictAccessPublic/{meta['fileId']}", headers=auth(token))
    assert public.status_code == 200 and public.json()["contentPublic"] is True  # route bug kept
    assert httpx.get(f"{api(p)}/files/content/{meta['fileId']}").status_code == 303
    no_id = httpx.put(f"{api(p)}/files/file/{meta['fileId']}", headers=auth(token),
                      json={"name": "n", "source": "s"})
    assert no_id.status_code == 400 and no_id.json() == {"message": "Error updating file",
                                                         "cause": "Unexpected exception"}
    updated = httpx.put(f"{api(p)}/files/file/ignored", headers=auth(token),
                        json={"fileId": meta["fileId"], "name": "renamed", "source": "s",
                              "tags": ["new"]})
    assert updated.status_code == 200 and updated.json()["name"] == "renamed"
    deleted = httpx.delete(f"{api(p)}/files/file/{meta['fileId']}", headers=auth(token))
    assert deleted.status_code == 200 and deleted.json()["status"] == {"status": "Deleted"}
    gone = httpx.get(f"{api(p)}/files/file/{meta['fileId']}", headers=auth(token))
    assert gone.status_code == 404
    assert httpx.get(f"{api(p)}/files/content/{meta['fileId']}").status_code == 404


def test_streamed_upload_is_stored_intact(files_app):
    p, token = files_app
    meta = upload_meta(p, token)
    digest = hashlib.sha256()
    chunk = os.urandom(1 << 20)

    def body():
        for _ in range(32):
            digest.update(chunk)
            yield chunk

    put = httpx.put(meta["contentUrl"], content=body(), headers=SSE, timeout=120)
    assert put.status_code == 200
    done = httpx.put(f"{api(p)}/files/file/{meta['fileId']}/complete", headers=auth(token))
    assert done.json()["status"] == {"status": "Completed", "size": 32 << 20}
    listed = httpx.get(p["url"] + "/_control/files").json()["files"]
    assert next(f for f in listed if f["fileId"] == meta["fileId"])["sha256"] == digest.hexdigest()


@pytest.mark.slow
def test_one_gib_upload_does_not_sit_in_memory(sandbox_factory):
    box = sandbox_factory("--pda", "big")
    p = box.pda("big")
    meta = upload_meta(p, mint(p))
    chunk = b"\0" * (4 << 20)

    def body():
        for _ in range(256):
            yield chunk

    put = httpx.put(meta["contentUrl"], content=body(), headers=SSE, timeout=600)
    assert put.status_code == 200
    with open(f"/proc/{box.process.pid}/status") as status:
        peak_kib = next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))
    assert peak_kib < 512 * 1024  # far below the 1 GiB that went through
