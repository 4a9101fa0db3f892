"""digi.me sandbox: JWKS and server tokens, oauth/authorize, code exchange, refresh rotation."""

from __future__ import annotations

import base64
import hashlib

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from .test_digime_support import (
    REDIRECT,
    api,
    assert_error,
    authorize,
    auto_approve,
    click,
    connect,
    control,
    exchange,
    import_write,
    mint,
    onboard_url,
    redirect_params,
    refresh,
    register,
    verify_server_token,
)


@pytest.fixture(autouse=True)
def manual_consent(sandbox):
    with auto_approve(sandbox, False):
        yield


def _b64int(text: str) -> int:
    return int.from_bytes(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)), "big")


def test_jwks_serves_jwk_fields_and_pem(sandbox):
    resp = httpx.get(api(sandbox, "jwks/oauth"))
    assert resp.status_code == 200
    (key,) = resp.json()["keys"]
    assert key["kty"] == "RSA" and key["alg"] == "PS512" and key["use"] == "sig"
    assert key["pem"].startswith("-----BEGIN PUBLIC KEY-----") and key["kid"]
    assert _b64int(key["e"]) == 65537 and _b64int(key["n"]).bit_length() == 2048


def test_token_response_verifies_from_pem_and_from_n_e_with_salt_64(sandbox):
    contract = register(sandbox)
    resp, _ = authorize(sandbox, contract)
    token = resp.json()["token"]
    header = jwt.get_unverified_header(token)
    assert header["jku"] == api(sandbox, "jwks/oauth")
    assert set(verify_server_token(token)) == {"preauthorization_code"}
    (key,) = httpx.get(header["jku"]).json()["keys"]
    public = rsa.RSAPublicNumbers(_b64int(key["e"]), _b64int(key["n"])).public_key()
    head, body, sig = token.split(".")
    signature = base64.urlsafe_b64decode(sig + "==")
    public.verify(signature, f"{head}.{body}".encode(),
                  padding.PSS(mgf=padding.MGF1(hashes.SHA512()), salt_length=64), hashes.SHA512())


def test_jku_follows_the_mount(sandbox):
    contract = register(sandbox)
    url = sandbox.digime_api_url.replace("/v1.7/", "/v1.6/") + "oauth/authorize"
    resp = httpx.post(url, headers=contract.auth(
        code_challenge="A" * 43, code_challenge_method="S256", redirect_uri=REDIRECT,
        response_mode="query", response_type="code"))
    assert jwt.get_unverified_header(resp.json()["token"])["jku"].endswith("/v1.6/jwks/oauth")


def test_authorize_returns_token_and_session_in_ms(sandbox):
    contract = register(sandbox)
    resp, _ = authorize(sandbox, contract)
    session = resp.json()["session"]
    assert isinstance(session["key"], str) and session["key"]
    assert session["expiry"] > 1e12  # epoch milliseconds


def test_authorize_tolerates_an_absent_body(sandbox):
    contract = register(sandbox)
    resp = httpx.post(api(sandbox, "oauth/authorize"), headers=contract.auth(
        code_challenge="A" * 43, code_challenge_method="S256", redirect_uri=REDIRECT,
        response_mode="query", response_type="code"))
    assert resp.status_code == 200, resp.text


@pytest.mark.parametrize(("claims", "status", "code", "text"), [
    ({"code_challenge_method": "plain"}, 400, "InvalidRequest", "code_challenge_method"),
    ({"code_challenge_method": None}, 400, "InvalidRequest", "code_challenge_method"),
    ({"code_challenge": "short"}, 400, "InvalidRequest", "code_challenge"),
    ({"response_type": "token"}, 400, "InvalidRequest", "response_type"),
    ({"redirect_uri": None}, 400, "InvalidRedirectUri", "The redirect_uri (undefined) is invalid"),
    ({"redirect_uri": "javascript:alert(1)"}, 400, "InvalidRedirectUri", "is invalid"),
    ({"redirect_uri": "/relative"}, 400, "InvalidRedirectUri", "is invalid"),
    ({"redirect_uri": "http://app.test/cb#frag"}, 400, "InvalidRedirectUri", "fragment"),
    ({"access_token": "no-such-token"}, 401, "InvalidToken",
     "The token (access_token) is invalid"),
])
def test_authorize_rejects_bad_claims(sandbox, claims, status, code, text):
    contract = register(sandbox)
    resp, _ = authorize(sandbox, contract, **claims)
    assert_error(resp, status, code, text)


def test_registered_redirect_uris_are_enforced(sandbox):
    good = "https://app.example/return?x=1"
    contract = register(sandbox, redirect_uris=[good])
    assert_error(authorize(sandbox, contract, redirect_uri="https://evil.example/")[0],
                 400, "InvalidRedirectUri", "The redirect_uri (https://evil.example/) is invalid")
    resp, _ = authorize(sandbox, contract, redirect_uri=good)
    assert resp.status_code == 200
    params = redirect_params(click(sandbox, onboard_url(sandbox, resp), "allow"), prefix=good)
    assert params["x"] == "1" and params["success"] == "true"  # appended with &
    # v8 made redirectUri optional: the registered one is used
    resp, _ = authorize(sandbox, contract, redirect_uri=None)
    redirect_params(click(sandbox, onboard_url(sandbox, resp), "allow"), prefix=good)


def test_code_exchange_gives_tokens_in_epoch_seconds(sandbox):
    contract = register(sandbox)
    tokens = connect(sandbox, contract)
    assert tokens["token_type"] == "Bearer" and tokens["consentid"]
    assert tokens["identifier"] == {"id": tokens["sub"]}
    for name in ("access_token", "refresh_token"):
        assert tokens[name]["value"] and 1e9 < tokens[name]["expires_on"] < 1e10
    assert tokens["refresh_token"]["expires_on"] > tokens["access_token"]["expires_on"]


def test_code_exchange_checks_the_verifier_and_is_single_use(sandbox):
    contract = register(sandbox)
    resp, verifier = authorize(sandbox, contract)
    code = redirect_params(click(sandbox, onboard_url(sandbox, resp), "allow"))["code"]
    assert_error(exchange(sandbox, contract, code, verifier[:-1] + ("A" if verifier[-1] != "A"
                                                                    else "B")),
                 400, "InvalidRequest", "code_verifier does not match")
    # a failed verifier attempt uses the code up (strict)
    assert_error(exchange(sandbox, contract, code, verifier), 401, "InvalidToken")

    resp, verifier = authorize(sandbox, contract)
    code = redirect_params(click(sandbox, onboard_url(sandbox, resp), "allow"))["code"]
    assert exchange(sandbox, contract, code, verifier).status_code == 200
    assert_error(exchange(sandbox, contract, code, verifier), 401, "InvalidToken",
                 "The token (authorization_code) is invalid")


def test_code_of_another_client_is_invalid(sandbox):
    one, two = register(sandbox), register(sandbox)
    resp, verifier = authorize(sandbox, one)
    code = redirect_params(click(sandbox, onboard_url(sandbox, resp), "allow"))["code"]
    assert_error(exchange(sandbox, two, code, verifier), 401, "InvalidToken")


def test_token_call_validation(sandbox):
    contract = register(sandbox)
    url = api(sandbox, "oauth/token")
    assert_error(httpx.post(url, headers=contract.auth(grant_type="password")),
                 400, "ValidationErrors", "grant_type")
    assert_error(httpx.post(url, headers=contract.auth(grant_type="authorization_code")),
                 400, "ValidationErrors", "code")
    assert_error(httpx.post(url, headers=contract.auth(grant_type="refresh_token")),
                 400, "ValidationErrors", "refresh_token")
    assert_error(httpx.post(url, headers=contract.auth(grant_type="refresh_token",
                                                       refresh_token="x"),
                            json={"grant_type": "refresh_token"}),
                 400, "ValidationErrors", "no body")


def test_refresh_rotates_and_kills_the_old_pair(sandbox):
    contract = register(sandbox)
    cred = mint(sandbox, contract)
    old_access, old_refresh = cred["access_token"]["value"], cred["refresh_token"]["value"]
    before = control(sandbox, "GET", "/stats", params={"client_id": contract.client_id}).json()

    resp = refresh(sandbox, contract, old_refresh)
    assert resp.status_code == 200, resp.text
    new = verify_server_token(resp.json()["token"])
    assert new["access_token"]["value"] != old_access
    assert new["refresh_token"]["value"] != old_refresh
    assert new["sub"] == cred["user_id"] and new["consentid"] == cred["consentid"]

    assert_error(refresh(sandbox, contract, old_refresh), 401, "InvalidToken",
                 "The token (refresh_token) is invalid")
    assert_error(import_write(sandbox, contract, old_access, b"x"), 401, "InvalidToken",
                 "The token (access_token) is invalid")
    assert import_write(sandbox, contract, new["access_token"]["value"], b"x").status_code == 201
    after = control(sandbox, "GET", "/stats", params={"client_id": contract.client_id}).json()
    assert after["refresh_calls"] - before["refresh_calls"] == 2


def test_refresh_token_of_another_client_expired_or_revoked(sandbox):
    one, two = register(sandbox), register(sandbox)
    cred = mint(sandbox, one)
    assert_error(refresh(sandbox, two, cred["refresh_token"]["value"]), 401, "InvalidToken")
    expired = mint(sandbox, one, refresh_ttl=-5)
    assert_error(refresh(sandbox, one, expired["refresh_token"]["value"]), 401, "InvalidToken",
                 "The token (refresh_token) is expired")
    revoked = mint(sandbox, one)
    value = revoked["refresh_token"]["value"]
    assert control(sandbox, "POST", "/tokens/revoke", json={"refresh_token": value}).status_code \
        == 200
    assert_error(refresh(sandbox, one, value), 401, "InvalidToken",
                 "The token (refresh_token) is invalid")


def test_authorize_with_access_token_links_the_same_library(sandbox):
    contract = register(sandbox)
    first = connect(sandbox, contract)
    resp, verifier = authorize(sandbox, contract, access_token=first["access_token"]["value"])
    assert resp.status_code == 200, resp.text
    params = redirect_params(click(sandbox, onboard_url(sandbox, resp), "allow"))
    assert params["postboxId"] == first["params"]["postboxId"]
    second = verify_server_token(exchange(sandbox, contract, params["code"], verifier)
                                 .json()["token"])
    assert second["sub"] == first["sub"] and second["consentid"] != first["consentid"]


def test_pkce_challenge_is_sha256_of_the_verifier_string(sandbox):
    """The challenge covers the *verifier string*, not the random bytes behind it (§3.2)."""
    contract = register(sandbox)
    resp, verifier = authorize(sandbox, contract)
    code = redirect_params(click(sandbox, onboard_url(sandbox, resp), "allow"))["code"]
    digest = hashlib.sha256(verifier.encode()).digest()
    assert len(base64.urlsafe_b64encode(digest).rstrip(b"=")) == 43
    assert exchange(sandbox, contract, code, verifier).status_code == 200
