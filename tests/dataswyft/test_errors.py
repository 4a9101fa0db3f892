"""Error parsing (pure logic): both PDA envelopes, HTML and empty bodies, S3 XML, transport
errors; and that no token or presigned query ever reaches a message or repr."""

from __future__ import annotations

import json
import pickle

import httpx
import pytest

from worker.dataswyft import DataswyftHTTPError, S3Error
from worker.dataswyft.errors import http_error, s3_error, transport_error

TOKEN = "eyJhbGciOiJSUzI1NiJ9.eyJpc3MiOiJ4In0.c2lnbmF0dXJl"
NEW = "eyJhbGciOiJSUzI1NiJ9.eyJpc3MiOiJ5In0.bmV3c2ln"


def answer(status: int, body: object = b"", *, headers: dict | None = None) -> httpx.Response:
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    return httpx.Response(status, content=content, headers=headers or {})


@pytest.mark.parametrize("status, body, title, message, cause", [
    (401, {"error": "Not Authenticated", "message": "Not Authenticated"},
     "Not Authenticated", "Not Authenticated", None),
    (403, {"error": "Forbidden", "message": "Access Denied"}, "Forbidden", "Access Denied", None),
    (400, {"message": "Bad Request", "cause": "Duplicate data - Duplicate data"},
     "Bad Request", None, "Duplicate data - Duplicate data"),
    (400, {"error": "Bad Request",
           "message": {"obj[0].endpoint": [{"msg": ["error.path.missing"], "args": []}]}},
     "Bad Request", "obj[0].endpoint: error.path.missing", None),
    (404, {"error": "Not Found", "message": "HAT unavailable"}, "Not Found", "HAT unavailable", None),
    (400, {"message": "Request rate exceeded", "cause": "Rate of requests from your IP exceeded",
           "details": ["Request to /users/access_token"]},
     "Request rate exceeded", None, "Rate of requests from your IP exceeded"),
    (415, b"<!DOCTYPE html><html><head><title>Unsupported Media Type</title></head><body>"
          b"<h1>Unsupported Media Type</h1><p id=\"detail\">Expecting text/json or "
          b"application/json body</p></body></html>",
     "Unsupported Media Type", "Expecting text/json or application/json body", None),
    (413, b"<html><body><h1>Request Entity Too Large</h1><p>For request 'POST /x'</p></body></html>",
     "Request Entity Too Large", "For request 'POST /x'", None),
    (502, b"", "Bad Gateway", None, None),
    (500, b"upstream failed", "Internal Server Error", "upstream failed", None),
])
def test_envelopes(status, body, title, message, cause):
    err = http_error(answer(status, body, headers={"X-Auth-Token": NEW}), operation="op")
    assert (err.status, err.title, err.message, err.cause) == (status, title, message, cause)
    assert err.new_token == NEW
    assert NEW not in str(err) and NEW not in repr(err) and "\n" not in err.readable
    assert str(err) == err.readable


def test_properties():
    dup = http_error(answer(400, {"message": "Bad Request",
                                  "cause": "Could not insert data - Duplicate data"}))
    assert dup.duplicate and not dup.incomplete_upload
    other = http_error(answer(400, {"message": "Bad Request",
                                    "cause": "Duplicate data - Unexpected issue with inserting data"}))
    assert other.duplicate  # the HAT maps any insert failure to this cause
    incomplete = http_error(answer(400, {"message": "File not available",
                                         "cause": "Not fully uploaded file can not be completed"}))
    assert incomplete.incomplete_upload and not incomplete.duplicate
    controller_404 = http_error(answer(404, {"message": "HAT unavailable"}))
    assert controller_404.hat_unavailable
    not_found = http_error(answer(404, {"error": "Handler Not Found",
                                        "message": "Request handler at POST:/x does not exist"}))
    assert not not_found.hat_unavailable and not not_found.transient
    assert http_error(answer(401, {})).not_authenticated
    assert http_error(answer(403, {})).forbidden


def test_secrets_in_bodies_are_cut_out():
    body = {"error": "Bad Request", "message": f"token {TOKEN} and {NEW} were echoed"}
    err = http_error(answer(400, body, headers={"X-Auth-Token": NEW}), secrets=(TOKEN,))
    assert TOKEN not in str(err) and NEW not in str(err)
    assert "were echoed" in str(err)


def test_retry_after_and_pickling():
    err = http_error(answer(503, b"", headers={"Retry-After": "12", "X-Auth-Token": NEW}),
                     operation="create records")
    assert err.retry_after == 12 and err.transient
    again = pickle.loads(pickle.dumps(err))
    assert (again.status, again.new_token, again.operation, str(again)) == \
        (503, NEW, "create records", str(err))
    assert isinstance(again, DataswyftHTTPError)


def test_s3_xml():
    xml = (b'<?xml version="1.0" encoding="UTF-8"?><Error><Code>AccessDenied</Code>'
           b"<Message>Request has expired</Message><X-Amz-Expires>300</X-Amz-Expires>"
           b"<CanonicalRequest>PUT /k X-Amz-Credential=SECRET</CanonicalRequest></Error>")
    err = s3_error(answer(403, xml))
    assert (err.status, err.code, err.message) == (403, "AccessDenied", "Request has expired")
    assert err.expired and "SECRET" not in str(err)
    assert pickle.loads(pickle.dumps(err)).code == "AccessDenied"
    bare = s3_error(answer(503, b""))
    assert bare.code is None and bare.transient and isinstance(bare, S3Error)


def test_transport_error_drops_queries():
    url = "https://bucket.s3.amazonaws.com/pda/file.txt?X-Amz-Signature=deadbeef&X-Amz-Credential=AK"
    exc = httpx.ConnectError(f"failed to connect to {url}")
    err = transport_error(exc, operation="S3 upload")
    assert "deadbeef" not in str(err) and "Credential=AK" not in str(err)
    assert "bucket.s3.amazonaws.com/pda/file.txt" in str(err) and err.kind == "connect"
    bare = transport_error(httpx.ReadError("X-Amz-Signature=cafe seen"), operation="x")
    assert "cafe" not in str(bare)
