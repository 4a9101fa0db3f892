"""OAuth against the sandbox over HTTP: authorize, onboarding (auto-approve), code exchange,
refresh rotation; PKCE and the onboarding URL."""

from __future__ import annotations

import base64
import hashlib
import re
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from worker.digime import DigimeHTTPError, is_invalid_token, pkce_pair
from worker.errors import ValidationError

from .conftest import DESCRIPTOR, sandbox_settings

REDIRECT = "http://127.0.0.1:9/digime/return"


def test_pkce_pair_matches_the_sdk():
    verifier, challenge = pkce_pair()
    assert re.fullmatch(r"[A-Za-z0-9_-]{43}", verifier)
    raw = base64.urlsafe_b64decode(verifier + "=")
    assert re.fullmatch(rb"[A-Za-z0-9]{32}", raw)
    expected = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=")
    assert challenge == expected.decode()
    assert pkce_pair()[0] != verifier


def test_onboarding_url(client, digime_settings):
    url = client.onboarding_url("abc def&x")
    assert url == f"{digime_settings.onboard_url}authorize?code=abc%20def%26x&sourceType=push"
    assert client.onboarding_url("c", "pull").endswith("?code=c&sourceType=pull")
    with pytest.raises(ValidationError):
        client.onboarding_url("c", "sideways")


def _approve(url: str) -> dict[str, str]:
    """Open the onboarding URL as a browser would with auto-approve on: a 302 back to us."""
    reply = httpx.get(url, follow_redirects=False, timeout=30)
    assert reply.status_code == 302, reply.text
    location = reply.headers["location"]
    assert location.startswith(REDIRECT + "?")
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


def test_authorize_onboard_and_exchange(client, sandbox, verifier):
    code_verifier, challenge = pkce_pair()
    result = client.authorize(redirect_uri=REDIRECT, state="st-1", code_challenge=challenge)
    assert result.preauthorization_code
    assert isinstance(result.session_key, str) and result.session_expiry_ms > 10**12  # ms
    assert result.preauthorization_code not in repr(result)
    with sandbox_settings(sandbox, auto_approve=True):
        back = _approve(client.onboarding_url(result.preauthorization_code))
    assert sandbox.control("GET", "/settings").json()["auto_approve"] is False
    assert back["success"] == "true" and back["state"] == "st-1"
    assert "BEGIN RSA PUBLIC KEY" in back["publicKey"]

    tokens = client.exchange_code(back["code"], code_verifier)
    assert tokens.user_id and tokens.consent_id
    assert tokens.access_token not in repr(tokens) and tokens.refresh_token not in repr(tokens)
    assert 10**9 < tokens.access_expires_at < 10**11  # seconds, not ms
    assert verifier.fetch_count == 1  # one JWKS fetch for both tokens

    # The redirect's PKCS#1 key and postbox work for a write with the new token.
    from worker.digime import BytesPayload
    result = client.write_postbox(access_token=tokens.access_token, postbox_id=back["postboxId"],
                                  public_key_pem=back["publicKey"], file_name="a.txt",
                                  descriptor=DESCRIPTOR, payload=BytesPayload(b"hello"))
    assert result.status == "delivered"

    # The code is single-use.
    with pytest.raises(DigimeHTTPError) as info:
        client.exchange_code(back["code"], code_verifier)
    assert info.value.status == 401 and info.value.code == "InvalidToken"


def test_exchange_with_wrong_verifier_fails(client, sandbox):
    _, challenge = pkce_pair()
    result = client.authorize(redirect_uri=REDIRECT, state="s", code_challenge=challenge)
    with sandbox_settings(sandbox, auto_approve=True):
        back = _approve(client.onboarding_url(result.preauthorization_code))
    with pytest.raises(DigimeHTTPError) as info:
        client.exchange_code(back["code"], pkce_pair()[0])
    assert info.value.status == 400 and info.value.code == "InvalidRequest"
    assert back["code"] not in str(info.value)


def test_authorize_with_access_token_joins_the_library(client, sandbox, mint):
    cred = mint()
    code_verifier, challenge = pkce_pair()
    result = client.authorize(redirect_uri=REDIRECT, state="s", code_challenge=challenge,
                              access_token=cred["access_token"]["value"])
    with sandbox_settings(sandbox, auto_approve=True):
        back = _approve(client.onboarding_url(result.preauthorization_code))
    tokens = client.exchange_code(back["code"], code_verifier)
    assert tokens.user_id == cred["user_id"]


def test_authorize_validates_before_sending(client):
    with pytest.raises(ValidationError, match="code_challenge"):
        client.authorize(redirect_uri=REDIRECT, state="s", code_challenge="short")
    with pytest.raises(ValidationError, match="redirect_uri"):
        client.authorize(redirect_uri="", state="s", code_challenge=pkce_pair()[1])


def test_authorize_error_is_parsed(client):
    with pytest.raises(DigimeHTTPError) as info:
        client.authorize(redirect_uri="not-a-url", state="s", code_challenge=pkce_pair()[1])
    assert info.value.status == 400 and info.value.code == "InvalidRedirectUri"
    assert info.value.reference


def test_refresh_rotates_and_the_old_token_is_used_up(client, mint):
    cred = mint()
    old_refresh = cred["refresh_token"]["value"]
    fresh = client.refresh(old_refresh)
    assert fresh.refresh_token != old_refresh
    assert fresh.access_token != cred["access_token"]["value"]
    assert fresh.user_id == cred["user_id"] and fresh.consent_id == cred["consentid"]
    with pytest.raises(DigimeHTTPError) as info:
        client.refresh(old_refresh)
    err = info.value
    assert err.status == 401 and err.code == "InvalidToken" and is_invalid_token(err)
    assert old_refresh not in str(err) and old_refresh not in repr(err)
    again = client.refresh(fresh.refresh_token)  # the new one works, once
    assert again.refresh_token not in (fresh.refresh_token, old_refresh)


def test_expired_refresh_token(client, mint):
    cred = mint(refresh_ttl=-10)
    with pytest.raises(DigimeHTTPError) as info:
        client.refresh(cred["refresh_token"]["value"])
    assert info.value.status == 401 and info.value.code == "InvalidToken"
    assert "expired" in info.value.message


def test_every_call_has_a_fresh_nonce(client, mint, sandbox, contract_key):
    """Five refreshes in a row would fail on the sandbox's nonce check if any were reused."""
    before = sandbox.control("GET", "/stats", params={"client_id": contract_key.client_id}).json()
    token = mint()["refresh_token"]["value"]
    for _ in range(5):
        token = client.refresh(token).refresh_token
    after = sandbox.control("GET", "/stats", params={"client_id": contract_key.client_id}).json()
    assert after["refresh_calls"] - before["refresh_calls"] == 5
