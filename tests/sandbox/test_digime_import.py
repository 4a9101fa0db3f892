"""digi.me sandbox: the current library push (`permission-access/import`, SDK v9+)."""

from __future__ import annotations

import hashlib
import json
import os

import httpx
import pytest

from .test_digime_support import (
    api,
    assert_error,
    control,
    delivery_for,
    descriptor,
    import_write,
    mint,
    register,
    rsa_key,
)


@pytest.fixture
def contract(sandbox):
    return register(sandbox)


@pytest.fixture
def cred(sandbox, contract):
    return mint(sandbox, contract)


def _chunks(data: bytes, size: int = 65536):
    for i in range(0, len(data), size):
        yield data[i:i + size]


def test_import_stores_plaintext_and_descriptor(sandbox, contract, cred):
    data = os.urandom(300_001)
    meta = {"mimeType": "application/json", "accounts": [{"accountId": "a1"}],
            "reference": ["r"], "tags": [], "zzz": {"b": 1, "a": 2}}
    token = cred["access_token"]["value"]
    resp = import_write(sandbox, contract, token, _chunks(data), meta)  # chunked, no length
    assert resp.status_code == 201 and resp.content == b""
    (row,) = delivery_for(sandbox, hashlib.sha256(data).hexdigest())
    assert row["mode"] == "import" and row["status"] == "delivered" and row["size"] == len(data)
    assert row["access_token_used"] == token and row["user_id"] == cred["user_id"]
    assert json.dumps(row["metadata"]) == json.dumps(meta)
    assert control(sandbox, "GET", f"/deliveries/{row['id']}/content").content == data


def test_missing_content_type_is_tolerated(sandbox, contract, cred):
    data = b"pre-16.1.3 sends no content type"
    resp = import_write(sandbox, contract, cred["access_token"]["value"], data,
                        headers={"Content-Type": None, "contentType": "junk"})
    assert resp.status_code == 201
    assert delivery_for(sandbox, hashlib.sha256(data).hexdigest())


def test_wrong_content_type_is_406(sandbox, contract, cred):
    resp = import_write(sandbox, contract, cred["access_token"]["value"], b"x",
                        headers={"Content-Type": "text/plain"})
    assert_error(resp, 406, "ValidationErrors", "application/octet-stream")


def test_expired_or_unknown_token_is_401_and_stores_nothing(sandbox, contract, cred):
    token = cred["access_token"]["value"]
    control(sandbox, "POST", "/tokens/expire", json={"access_token": token})
    data = os.urandom(64)
    assert_error(import_write(sandbox, contract, token, data), 401, "InvalidToken",
                 "The token (access_token) is expired")
    assert_error(import_write(sandbox, contract, "nope", data), 401, "InvalidToken",
                 "The token (access_token) is invalid")
    other = register(sandbox)  # a token is bound to the contract it was issued to
    assert_error(import_write(sandbox, other, mint(sandbox, contract)["access_token"]["value"],
                              data), 401, "InvalidToken")
    assert delivery_for(sandbox, hashlib.sha256(data).hexdigest()) == []


def test_file_descriptor_header_is_required_and_verified(sandbox, contract, cred):
    token = cred["access_token"]["value"]
    assert_error(import_write(sandbox, contract, token, b"x", headers={"FileDescriptor": None}),
                 400, "ValidationErrors", "FileDescriptor")
    assert_error(import_write(sandbox, contract, token, b"x",
                              headers={"FileDescriptor": "not-a-jwt"}),
                 400, "InvalidRequest", "FileDescriptor")
    other_key = next(k for k in (rsa_key() for _ in range(10)) if k is not contract.key)
    forged = contract.sign({"metadata": descriptor()}, key=other_key)
    assert_error(import_write(sandbox, contract, token, b"x", headers={"FileDescriptor": forged}),
                 400, "InvalidRequest", "signature")
    rs = contract.sign({"metadata": descriptor()}, alg="RS512")
    assert_error(import_write(sandbox, contract, token, b"x", headers={"FileDescriptor": rs}),
                 400, "InvalidRequest", "PS512")
    extra = contract.sign({"metadata": descriptor(), "iat": 1})
    assert_error(import_write(sandbox, contract, token, b"x", headers={"FileDescriptor": extra}),
                 400, "InvalidRequest", "only the claim 'metadata'")
    empty = contract.sign({})
    assert_error(import_write(sandbox, contract, token, b"x", headers={"FileDescriptor": empty}),
                 400, "ValidationErrors", "metadata")


@pytest.mark.parametrize(("meta", "field"), [
    ({"accounts": []}, "mimeType"),
    ({"mimeType": None, "accounts": []}, "mimeType"),
    ({"mimeType": "x"}, "accounts"),
    ({"mimeType": "x", "accounts": {}}, "accounts"),
    ({"mimeType": "x", "accounts": [{"id": "a"}]}, "accounts[0].accountId"),
    ({"mimeType": "x", "accounts": [{"accountId": 5}]}, "accounts[0].accountId"),
    ({"mimeType": "x", "accounts": [], "reference": "r"}, "reference"),
    ({"mimeType": "x", "accounts": [], "tags": [1]}, "tags"),
    ([], "object"),
])
def test_descriptor_shape_is_validated(sandbox, contract, cred, meta, field):
    assert_error(import_write(sandbox, contract, cred["access_token"]["value"], b"x", meta),
                 400, "ValidationErrors", field)


def test_empty_descriptor_fields_pass(sandbox, contract, cred):
    resp = import_write(sandbox, contract, cred["access_token"]["value"], b"y",
                        {"mimeType": "", "accounts": []})
    assert resp.status_code == 201


def test_large_chunked_upload_streams(sandbox, contract, cred):
    block = os.urandom(1024 * 1024)
    digest = hashlib.sha256()
    for _ in range(50):
        digest.update(block)

    def body():
        for _ in range(50):
            yield block

    resp = import_write(sandbox, contract, cred["access_token"]["value"], body())
    assert resp.status_code == 201
    (row,) = delivery_for(sandbox, digest.hexdigest())
    assert row["size"] == 50 * 1024 * 1024


def test_import_without_bearer(sandbox):
    assert_error(httpx.post(api(sandbox, "permission-access/import"), content=b"x"), 406,
                 "ValidationErrors")
