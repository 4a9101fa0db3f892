"""digi.me sandbox: the legacy encrypted postbox write (SDK v5-v8)."""

from __future__ import annotations

import base64
import hashlib
import json
import os

import httpx
import pytest

from .test_digime_support import (
    aes_cbc,
    api,
    assert_error,
    control,
    delivery_for,
    descriptor,
    mint,
    postbox_claims,
    postbox_write,
    register,
)


@pytest.fixture
def contract(sandbox):
    return register(sandbox)


@pytest.fixture
def cred(sandbox, contract):
    return mint(sandbox, contract)


def test_write_decrypts_to_exactly_the_bytes_and_descriptor_sent(sandbox, contract, cred):
    data = os.urandom(100_003)
    meta = {"tags": ["b", "a"], "mimeType": "application/x-thing", "accounts": [],
            "extra": {"z": 1, "a": [1, 2]}}  # key order must survive
    resp = postbox_write(sandbox, contract, cred, data, meta, file_name="data.bin")
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["status"] == "delivered" and isinstance(body["expires"], int)
    (row,) = delivery_for(sandbox, hashlib.sha256(data).hexdigest())
    assert row["mode"] == "postbox" and row["status"] == "delivered"
    assert row["size"] == len(data) and row["fileName"] == "data.bin"
    assert row["postbox_id"] == cred["postbox_id"] and row["user_id"] == cred["user_id"]
    assert row["client_id"] == contract.client_id
    assert row["access_token_used"] == cred["access_token"]["value"]
    assert json.dumps(row["metadata"]) == json.dumps(meta)
    assert row["expires"] == body["expires"] > row["received_at"]
    content = control(sandbox, "GET", f"/deliveries/{row['id']}/content")
    assert content.status_code == 200 and content.content == data
    assert control(sandbox, "GET", f"/deliveries/{row['id']}").json() == row


def test_expired_access_token_stores_the_file_as_pending(sandbox, contract, cred):
    control(sandbox, "POST", "/tokens/expire", json={"access_token": cred["access_token"]["value"]})
    data = b"waits in the postbox"
    resp = postbox_write(sandbox, contract, cred, data)
    assert resp.status_code == 200
    assert resp.json()["status"] == "pending"
    (row,) = delivery_for(sandbox, hashlib.sha256(data).hexdigest())
    assert row["status"] == "pending" and row["size"] == len(data)


def test_unknown_or_revoked_token_is_401(sandbox, contract, cred):
    bad = {**cred, "access_token": {"value": "nope"}}
    assert_error(postbox_write(sandbox, contract, bad, b"x"), 401, "InvalidToken",
                 "The token (access_token) is invalid")
    assert_error(postbox_write(sandbox, contract, cred, b"x", access_token=None), 401,
                 "InvalidToken")


def test_unknown_postbox_is_404_and_anothers_is_403(sandbox, contract, cred):
    assert_error(postbox_write(sandbox, contract, cred, b"x", postbox_id="pb-nope"), 404,
                 "PostboxNotFound")
    other = mint(sandbox, contract)
    forged = {**cred, "postbox_id": other["postbox_id"], "public_key": other["public_key"]}
    assert_error(postbox_write(sandbox, contract, forged, b"x"), 403, "InsufficientScope",
                 "higher privileges")


@pytest.mark.parametrize(("override", "text"), [
    ({"symmetrical_key": "not base64!!"}, "symmetrical_key is not valid standard base64"),
    ({"symmetrical_key": base64.b64encode(b"\0" * 256).decode()}, "does not decrypt"),
    ({"symmetrical_key": base64.b64encode(b"short").decode()}, "must be 256 bytes"),
    ({"iv": "00" * 15}, "iv must be 32 hexadecimal"),
    ({"iv": "zz" * 16}, "iv must be 32 hexadecimal"),
    ({"metadata": "%%%"}, "metadata is not valid standard base64"),
    ({"metadata": base64.b64encode(b"0123456789abcde").decode()}, "multiple of 16"),
])
def test_bad_crypto_claims_are_400_and_store_nothing(sandbox, contract, cred, override, text):
    before = len(control(sandbox, "GET", "/deliveries").json()["deliveries"])
    assert_error(postbox_write(sandbox, contract, cred, b"x", **override), 400,
                 "InvalidRequest", text)
    assert len(control(sandbox, "GET", "/deliveries").json()["deliveries"]) == before


def test_metadata_that_is_not_json_or_not_a_descriptor(sandbox, contract, cred):
    assert_error(postbox_write(sandbox, contract, cred, b"x", b"not json"), 400,
                 "InvalidRequest", "not to UTF-8 JSON")
    assert_error(postbox_write(sandbox, contract, cred, b"x", {"mimeType": 1, "accounts": []}),
                 400, "ValidationErrors", "mimeType")


def _send(sandbox, contract, cred, **kwargs) -> httpx.Response:
    claims, key, iv = postbox_claims(cred["public_key"], cred["access_token"]["value"],
                                     descriptor())
    kwargs.setdefault("files", {"file": ("f.txt", aes_cbc(key, iv, b"data"))})
    url = api(sandbox, f"permission-access/postbox/{cred['postbox_id']}")
    return httpx.post(url, headers={**contract.auth(**claims), **kwargs.pop("headers", {})},
                      **kwargs)


def test_file_that_does_not_decrypt_is_400(sandbox, contract, cred):
    resp = _send(sandbox, contract, cred, files={"file": ("f.txt", os.urandom(64))})
    assert_error(resp, 400, "InvalidRequest", "padding")
    resp = _send(sandbox, contract, cred, files={"file": ("f.txt", b"")})
    assert_error(resp, 400, "InvalidRequest", "multiple of 16")


def test_multipart_shape_errors(sandbox, contract, cred):
    assert_error(_send(sandbox, contract, cred, files={"upload": ("f.txt", b"x" * 16)}),
                 400, "ValidationErrors", "a file named 'file'")
    two = [("file", ("a.txt", b"x" * 16)), ("file", ("b.txt", b"y" * 16))]
    assert_error(_send(sandbox, contract, cred, files=two), 400, "ValidationErrors")
    text_part = (b'--b0\r\nContent-Disposition: form-data; name="file"\r\n\r\n'
                 b'0123456789abcdef\r\n--b0--\r\n')
    assert_error(_send(sandbox, contract, cred, files=None, content=text_part,
                       headers={"content-type": "multipart/form-data; boundary=b0"}),
                 400, "ValidationErrors", "'file'")
    garbage = {"content-type": "multipart/form-data; boundary=xyz"}
    assert_error(_send(sandbox, contract, cred, files=None, content=b"garbage", headers=garbage),
                 400, "ValidationErrors")
    no_boundary = {"content-type": "multipart/form-data"}
    assert_error(_send(sandbox, contract, cred, files=None, content=b"x", headers=no_boundary),
                 400, "ValidationErrors")
    assert_error(_send(sandbox, contract, cred, files=None, content=b"x"), 406,
                 "ValidationErrors", "multipart/form-data")


def test_large_upload_streams(sandbox, contract, cred):
    size = 50 * 1024 * 1024 + 5
    data = os.urandom(1024 * 1024) * 50 + b"tail!"
    assert len(data) == size
    resp = postbox_write(sandbox, contract, cred, data, file_name="big.bin")
    assert resp.status_code == 200 and resp.json()["status"] == "delivered"
    (row,) = delivery_for(sandbox, hashlib.sha256(data).hexdigest())
    assert row["size"] == size
