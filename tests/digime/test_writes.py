"""Postbox writes and import pushes over HTTP, checked through the sandbox's deliveries."""

from __future__ import annotations

import base64
import hashlib
import os

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from worker.digime import (
    BytesPayload,
    DigimeHTTPError,
    InvalidPublicKey,
    is_invalid_token,
    load_postbox_key,
    validate_descriptor,
)
from worker.digime.postbox import PostboxCrypto, ciphertext_length, multipart_upload
from worker.errors import PayloadError, ValidationError

from .conftest import DESCRIPTOR, new_rsa


class CountingPayload:
    """Re-iterable payload that counts how often it was read."""

    def __init__(self, data: bytes, chunk: int = 7000) -> None:
        self.data, self.chunk, self.reads = data, chunk, 0

    @property
    def size(self) -> int:
        return len(self.data)

    def chunks(self):
        self.reads += 1
        for i in range(0, len(self.data), self.chunk):
            yield self.data[i:i + self.chunk]


class LyingPayload:
    def __init__(self, declared: int, actual: bytes) -> None:
        self.size, self.actual = declared, actual

    def chunks(self):
        yield self.actual


def _content(sandbox, delivery_id: int) -> bytes:
    reply = sandbox.control("GET", f"/deliveries/{delivery_id}/content")
    assert reply.status_code == 200
    return reply.content


def _write(client, cred, data: bytes, *, descriptor=DESCRIPTOR, file_name="notes.json",
           public_key=None, payload=None):
    return client.write_postbox(
        access_token=cred["access_token"]["value"], postbox_id=cred["postbox_id"],
        public_key_pem=cred["public_key"] if public_key is None else public_key, file_name=file_name,
        descriptor=descriptor, payload=payload or BytesPayload(data))


@pytest.mark.parametrize("size", [0, 1, 15, 16, 17, 300_000])
def test_postbox_write_is_delivered(client, mint, sandbox, deliveries, last_delivery_id, size):
    data = os.urandom(size)
    cred = mint()
    since = last_delivery_id()
    result = _write(client, cred, data)
    assert result.status == "delivered" and isinstance(result.expires, int | float)
    [row] = deliveries(since)
    assert row["mode"] == "postbox" and row["status"] == "delivered"
    assert row["metadata"] == DESCRIPTOR and row["fileName"] == "notes.json"
    assert row["user_id"] == cred["user_id"] and row["postbox_id"] == cred["postbox_id"]
    assert row["size"] == size and row["sha256"] == hashlib.sha256(data).hexdigest()
    assert _content(sandbox, row["id"]) == data


def test_postbox_descriptor_with_unicode_and_extra_keys(client, mint, deliveries, last_delivery_id):
    descriptor = {"mimeType": "", "accounts": [], "tags": ["café", "日本"], "extra": {"n": 1.5}}
    since = last_delivery_id()
    _write(client, mint(), b"x", descriptor=descriptor, file_name='we"ird name ü.txt')
    [row] = deliveries(since)
    assert row["metadata"] == descriptor
    assert row["fileName"] == "we%22ird name ü.txt"  # quotes escaped as browsers do


@pytest.mark.parametrize("form", ["pkcs1-pem", "spki-pem", "pkcs1-b64", "spki-b64", "pem-mangled"])
def test_public_key_forms(client, mint, form):
    cred = mint()
    key = serialization.load_pem_public_key(cred["public_key"].encode())
    pkcs1 = key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.PKCS1)
    spki = key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    text = {
        "pkcs1-pem": key.public_bytes(serialization.Encoding.PEM,
                                      serialization.PublicFormat.PKCS1).decode(),
        "spki-pem": key.public_bytes(serialization.Encoding.PEM,
                                     serialization.PublicFormat.SubjectPublicKeyInfo).decode(),
        "pkcs1-b64": base64.b64encode(pkcs1).decode(),
        "spki-b64": " ".join(base64.b64encode(spki).decode()[i:i + 50] for i in range(0, 400, 50)),
        "pem-mangled": "\r\n  " + cred["public_key"].replace("\n", " \r\n ") + "  ",
    }[form]
    assert _write(client, cred, b"k", public_key=text).status == "delivered"


def test_bad_public_keys_fail_before_any_request(client, mint, sandbox, contract_key):
    cred = mint()
    stats = sandbox.control("GET", "/stats", params={"client_id": contract_key.client_id}).json()
    small = new_rsa(1024).public_key().public_bytes(serialization.Encoding.PEM,
                                                    serialization.PublicFormat.PKCS1).decode()
    ec_key = ec.generate_private_key(ec.SECP256R1()).public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    private = new_rsa().private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption()).decode()
    for text, match in ((small, "1024 bits"), (ec_key, "not an RSA key"), ("", "missing"),
                        ("not base64 !!", "readable"), (private, "private key"),
                        ("-----BEGIN RSA PUBLIC KEY-----\nAAAA", "armour")):
        with pytest.raises(InvalidPublicKey, match=match) as info:
            _write(client, cred, b"x", public_key=text)
        assert "AAAA" not in str(info.value)
    after = sandbox.control("GET", "/stats", params={"client_id": contract_key.client_id}).json()
    assert after["postbox_calls"] == stats["postbox_calls"]


def test_load_postbox_key_accepts_bytes():
    pem = new_rsa().public_key().public_bytes(serialization.Encoding.PEM,
                                              serialization.PublicFormat.PKCS1)
    assert load_postbox_key(pem).key_size == 2048


def test_expired_token_gives_pending(client, mint, sandbox, deliveries, last_delivery_id):
    cred = mint()
    assert sandbox.control("POST", "/tokens/expire",
                           json={"access_token": cred["access_token"]["value"]}).status_code == 200
    since = last_delivery_id()
    result = _write(client, cred, b"later")
    assert result.status == "pending"
    [row] = deliveries(since)
    assert row["status"] == "pending"


def test_unknown_access_token_is_401(client, mint):
    cred = mint()
    cred["access_token"]["value"] = "not-a-token-" + "x" * 20
    with pytest.raises(DigimeHTTPError) as info:
        _write(client, cred, b"x")
    assert info.value.status == 401 and is_invalid_token(info.value)
    assert "not-a-token" not in str(info.value)


def test_other_users_postbox_is_403(client, mint):
    mine, theirs = mint(), mint()
    mine["postbox_id"] = theirs["postbox_id"]
    mine["public_key"] = theirs["public_key"]
    with pytest.raises(DigimeHTTPError) as info:
        _write(client, mine, b"x")
    assert info.value.status == 403 and info.value.code == "InsufficientScope"
    assert not is_invalid_token(info.value)


def test_retry_rereads_payload_and_uses_fresh_key_material(client, mint, sandbox, deliveries,
                                                          last_delivery_id):
    cred = mint()
    payload = CountingPayload(os.urandom(50_000))
    since = last_delivery_id()
    _write(client, cred, b"", payload=payload)
    _write(client, cred, b"", payload=payload)
    assert payload.reads == 2
    rows = deliveries(since)
    assert [r["sha256"] for r in rows] == [hashlib.sha256(payload.data).hexdigest()] * 2
    public = load_postbox_key(cred["public_key"])
    a, b = PostboxCrypto.new(public, b"{}"), PostboxCrypto.new(public, b"{}")
    assert a.key != b.key and a.iv != b.iv and len(a.key) == 32 and len(a.iv) == 16
    assert len(a.claims("t")["iv"]) == 32 and "***" in repr(a)


def test_content_length_is_exact_and_not_chunked(client, mint, sandbox):
    cred = mint()
    _write(client, cred, os.urandom(1000))
    log = sandbox.control("GET", "/requests", params={"path": cred["postbox_id"]}).json()
    [entry] = log["requests"]
    assert "content-length" in entry["headers"] and "transfer-encoding" not in entry["headers"]
    upload = multipart_upload("a.bin", 1000)
    assert upload.length == len(upload.head) + ciphertext_length(1000) + len(upload.tail)
    assert ciphertext_length(0) == 16 and ciphertext_length(16) == 32 and ciphertext_length(15) == 16


def test_payload_that_lies_about_its_size(client, mint, deliveries, last_delivery_id):
    cred = mint()
    since = last_delivery_id()
    with pytest.raises(PayloadError, match="declared"):
        _write(client, cred, b"", payload=LyingPayload(10, b"x" * 5))
    with pytest.raises(PayloadError, match="more than"):
        _write(client, cred, b"", payload=LyingPayload(5, b"x" * 10))
    with pytest.raises(PayloadError, match="more than"):
        client.push_import(access_token=cred["access_token"]["value"], descriptor=DESCRIPTOR,
                           payload=LyingPayload(5, b"x" * 10))
    assert deliveries(since) == []


@pytest.mark.parametrize("descriptor,field", [
    ([], "object"),
    ({"accounts": []}, "mimeType"),
    ({"mimeType": 1, "accounts": []}, "mimeType"),
    ({"mimeType": "a"}, "accounts"),
    ({"mimeType": "a", "accounts": {}}, "accounts"),
    ({"mimeType": "a", "accounts": [{}]}, r"accounts\[0\].accountId"),
    ({"mimeType": "a", "accounts": [{"accountId": 5}]}, r"accounts\[0\].accountId"),
    ({"mimeType": "a", "accounts": [], "tags": "x"}, "tags"),
    ({"mimeType": "a", "accounts": [], "reference": ["a", 1]}, r"reference\[1\]"),
    ({"mimeType": "a", "accounts": [], "x": float("nan")}, "NaN"),
    ({"mimeType": "a", "accounts": [], "x": object()}, "JSON"),
])
def test_descriptor_validation(client, mint, descriptor, field):
    with pytest.raises(ValidationError, match=field):
        validate_descriptor(descriptor)
    with pytest.raises(ValidationError, match=field):
        _write(client, mint(), b"x", descriptor=descriptor)


def test_descriptor_minimal_and_file_name(client, mint):
    assert validate_descriptor({"mimeType": "", "accounts": []}) == {"mimeType": "", "accounts": []}
    for name in ("", "   ", None, "a\nb"):
        with pytest.raises(ValidationError, match="file name"):
            _write(client, mint(), b"x", file_name=name)


# -- import ----------------------------------------------------------------------------------

@pytest.mark.parametrize("size", [0, 1, 1_000_003])
def test_import_push_is_delivered(client, mint, sandbox, deliveries, last_delivery_id, size):
    data = os.urandom(size)
    cred = mint()
    since = last_delivery_id()
    assert client.push_import(access_token=cred["access_token"]["value"], descriptor=DESCRIPTOR,
                              payload=BytesPayload(data, chunk_size=65_536)) is None
    [row] = deliveries(since)
    assert row["mode"] == "import" and row["status"] == "delivered"
    assert row["metadata"] == DESCRIPTOR and row["user_id"] == cred["user_id"]
    assert row["size"] == size and row["sha256"] == hashlib.sha256(data).hexdigest()
    assert _content(sandbox, row["id"]) == data


def test_import_with_expired_token_is_401_invalid_token(client, mint, sandbox, deliveries,
                                                        last_delivery_id):
    cred = mint()
    sandbox.control("POST", "/tokens/expire", json={"access_token": cred["access_token"]["value"]})
    since = last_delivery_id()
    with pytest.raises(DigimeHTTPError) as info:
        client.push_import(access_token=cred["access_token"]["value"], descriptor=DESCRIPTOR,
                           payload=BytesPayload(b"data"))
    err = info.value
    assert err.status == 401 and err.code == "InvalidToken" and is_invalid_token(err)
    assert "expired" in err.message and err.reference
    assert cred["access_token"]["value"] not in str(err)
    assert deliveries(since) == []


def test_refresh_then_write_again(client, mint, deliveries, last_delivery_id):
    """What the delivery layer does on `pending`: refresh once, upload once more."""
    cred = mint()
    fresh = client.refresh(cred["refresh_token"]["value"])
    with pytest.raises(DigimeHTTPError) as info:  # the old access token was revoked by rotation
        client.push_import(access_token=cred["access_token"]["value"], descriptor=DESCRIPTOR,
                           payload=BytesPayload(b"x"))
    assert is_invalid_token(info.value)
    since = last_delivery_id()
    client.push_import(access_token=fresh.access_token, descriptor=DESCRIPTOR, payload=BytesPayload(b"y"))
    assert [r["status"] for r in deliveries(since)] == ["delivered"]
