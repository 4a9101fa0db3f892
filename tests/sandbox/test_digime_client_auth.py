"""digi.me sandbox: the client assertion on every call (alg, key, nonce, timestamp, bearer)."""

from __future__ import annotations

import base64
import json
import time

import httpx
import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding

from .test_digime_support import (
    api,
    assert_error,
    control,
    import_write,
    mint,
    nonce,
    now_ms,
    register,
    rsa_key,
)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _jwks_call(sandbox, contract, token: str) -> httpx.Response:
    """oauth/token is a convenient authenticated endpoint: auth is checked before the grant."""
    return httpx.post(api(sandbox, "oauth/token"), headers={"Authorization": f"Bearer {token}"})


def _claims(contract, **extra):
    return {"client_id": contract.client_id, "grant_type": "refresh_token",
            "refresh_token": "nope", "nonce": nonce(), "timestamp": now_ms(), **extra}


def test_valid_assertion_reaches_the_endpoint(sandbox):
    contract = register(sandbox)
    resp = _jwks_call(sandbox, contract, contract.sign(_claims(contract)))
    assert_error(resp, 401, "InvalidToken", "The token (refresh_token) is invalid")


def test_pkcs1_registered_key_works_too(sandbox):
    contract = register(sandbox, pkcs1=True)
    resp = _jwks_call(sandbox, contract, contract.sign(_claims(contract)))
    assert_error(resp, 401, "InvalidToken")


def test_reused_nonce_is_rejected(sandbox):
    contract = register(sandbox)
    claims = _claims(contract)
    _jwks_call(sandbox, contract, contract.sign(claims))
    claims["timestamp"] += 1  # a different JWT, same nonce
    assert_error(_jwks_call(sandbox, contract, contract.sign(claims)), 400, "InvalidRequest",
                 f"The nonce provided in JWT payload ({claims['nonce']}) has already been used")


@pytest.mark.parametrize("bad", ["short", "x" * 33, "!" * 32, 12345, None])
def test_malformed_nonce_is_rejected(sandbox, bad):
    contract = register(sandbox)
    claims = _claims(contract, nonce=bad)
    if bad is None:
        del claims["nonce"]
    assert_error(_jwks_call(sandbox, contract, contract.sign(claims)), 400, "InvalidRequest",
                 "nonce")


@pytest.mark.parametrize("timestamp", [
    now_ms() - 3_600_000,  # an hour old
    now_ms() + 3_600_000,  # an hour ahead
    int(time.time()),  # seconds instead of milliseconds
    "1700000000000",
    None,
])
def test_stale_or_malformed_timestamp_is_rejected(sandbox, timestamp):
    contract = register(sandbox)
    claims = _claims(contract, timestamp=timestamp)
    if timestamp is None:
        del claims["timestamp"]
    assert_error(_jwks_call(sandbox, contract, contract.sign(claims)), 400, "InvalidRequest",
                 "timestamp")


def test_unknown_client_id(sandbox):
    contract = register(sandbox)
    claims = _claims(contract, client_id="nobody_nothing")
    assert_error(_jwks_call(sandbox, contract, contract.sign(claims)), 401, "InvalidClient",
                 "The client_id (nobody_nothing) is invalid")


def test_signed_by_another_key(sandbox):
    contract = register(sandbox)
    other = next(k for k in (rsa_key() for _ in range(10)) if k is not contract.key)
    err = assert_error(_jwks_call(sandbox, contract, contract.sign(_claims(contract), key=other)),
                       401, "InvalidClient", f"The client_id ({contract.client_id}) is invalid")
    assert "signature" in err["message"]


@pytest.mark.parametrize("alg", ["RS512", "RS256", "PS256"])
def test_other_rsa_algorithms_are_rejected(sandbox, alg):
    contract = register(sandbox)
    resp = _jwks_call(sandbox, contract, contract.sign(_claims(contract), alg=alg))
    assert "PS512" in assert_error(resp, 401, "InvalidClient")["message"]


def test_hmac_with_the_public_key_as_secret_is_rejected(sandbox):
    contract = register(sandbox)
    head = _b64(json.dumps({"alg": "HS512", "typ": "JWT"}).encode())
    body = _b64(json.dumps(_claims(contract)).encode())
    resp = _jwks_call(sandbox, contract, f"{head}.{body}.{_b64(b'x' * 64)}")
    assert_error(resp, 401, "InvalidClient", "PS512")


def test_unsigned_alg_none_is_rejected(sandbox):
    contract = register(sandbox)
    head = _b64(json.dumps({"alg": "none", "typ": "JWT"}).encode())
    body = _b64(json.dumps(_claims(contract)).encode())
    assert_error(_jwks_call(sandbox, contract, f"{head}.{body}."), 401, "InvalidClient")


def test_ps512_header_with_empty_signature_is_rejected(sandbox):
    contract = register(sandbox)
    head = _b64(json.dumps({"alg": "PS512", "typ": "JWT"}).encode())
    body = _b64(json.dumps(_claims(contract)).encode())
    assert_error(_jwks_call(sandbox, contract, f"{head}.{body}."), 401, "InvalidClient",
                 "signature")


def test_max_salt_pss_is_not_ps512(sandbox):
    """jwa uses salt = digest length; a max-salt signature must not pass (notes §10)."""
    contract = register(sandbox)
    head = _b64(json.dumps({"alg": "PS512", "typ": "JWT"}).encode())
    body = _b64(json.dumps(_claims(contract)).encode())
    sig = contract.key.sign(f"{head}.{body}".encode(), padding.PSS(
        mgf=padding.MGF1(hashes.SHA512()), salt_length=padding.PSS.MAX_LENGTH), hashes.SHA512())
    assert_error(_jwks_call(sandbox, contract, f"{head}.{body}.{_b64(sig)}"), 401,
                 "InvalidClient")


@pytest.mark.parametrize("authorization", [
    None, "", "Bearer", "Basic dXNlcjpwYXNz", "Bearer not-a-jwt",
    "Bearer a.b.c", "Bearer " + _b64(b"[1]") + "." + _b64(b"{}") + ".",
])
def test_missing_or_garbage_bearer_is_406_validation(sandbox, authorization):
    headers = {} if authorization is None else {"Authorization": authorization}
    for path in ("oauth/token", "oauth/authorize", "permission-access/import",
                 "permission-access/postbox/pb-x"):
        assert_error(httpx.post(api(sandbox, path), headers=headers), 406, "ValidationErrors",
                     "Parameter validation errors")


def test_accept_must_allow_json(sandbox):
    contract = register(sandbox)
    headers = {"Authorization": f"Bearer {contract.sign(_claims(contract))}",
               "Accept": "text/html"}
    assert_error(httpx.post(api(sandbox, "oauth/token"), headers=headers), 406,
                 "ValidationErrors", "Accept")


def test_unknown_path_and_wrong_method_use_the_error_shape(sandbox):
    assert_error(httpx.get(api(sandbox, "no/such/thing")), 404, "NotFound")
    assert_error(httpx.get(api(sandbox, "oauth/token")), 405, "MethodNotAllowed")


def test_header_safe_error_message_for_odd_client_ids(sandbox):
    contract = register(sandbox)
    claims = _claims(contract, client_id="caf\u00e9\r\nX-Injected: 1")
    resp = _jwks_call(sandbox, contract, contract.sign(claims))
    assert_error(resp, 401, "InvalidClient")
    assert "x-injected" not in resp.headers


def test_expired_access_token_on_authorize_is_401(sandbox):
    contract = register(sandbox)
    cred = mint(sandbox, contract, access_ttl=-10)
    resp = httpx.post(api(sandbox, "oauth/authorize"), headers=contract.auth(
        access_token=cred["access_token"]["value"], code_challenge="A" * 43,
        code_challenge_method="S256", redirect_uri="http://127.0.0.1:9/cb",
        response_mode="query", response_type="code"))
    assert_error(resp, 401, "InvalidToken", "The token (access_token) is expired")


def test_shifted_clock_expires_tokens_but_still_accepts_real_time_stamps(sandbox):
    contract = register(sandbox)
    cred = mint(sandbox, contract, access_ttl=3600)
    offset = control(sandbox, "GET", "/clock").json()["offset_seconds"]
    shifted = control(sandbox, "POST", "/clock", json={"shift_seconds": 2 * 86400})
    assert shifted.status_code == 200
    try:
        assert_error(import_write(sandbox, contract, cred["access_token"]["value"], b"late"),
                     401, "InvalidToken", "The token (access_token) is expired")
        stale = _claims(contract, timestamp=now_ms() - 3_600_000)
        assert_error(_jwks_call(sandbox, contract, contract.sign(stale)), 400, "InvalidRequest",
                     "timestamp")
    finally:
        control(sandbox, "POST", "/clock", json={"offset_seconds": offset})
