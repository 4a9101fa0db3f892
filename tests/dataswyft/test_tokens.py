"""Token claims and verification against the sandbox PDAs' real keys: a valid token passes,
every forgery or stale token is a TokenError, and a token naming another host never makes us
fetch that host's /publickey."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time

import httpx
import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from worker.dataswyft import (
    DataswyftHTTPError,
    PublicKeyCache,
    TokenError,
    decode_claims,
    idle_expires_at,
    usable_until,
    verify_token,
)

from .conftest import SANDBOX_POLICY

IDLE = 72 * 3600


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def parts(token: str) -> tuple[dict, dict]:
    header, payload, _ = token.split(".")
    pad = lambda s: s + "=" * (-len(s) % 4)  # noqa: E731
    return (json.loads(base64.urlsafe_b64decode(pad(header))),
            json.loads(base64.urlsafe_b64decode(pad(payload))))


def sign_rs(header: dict, payload: dict, key: rsa.RSAPrivateKey,
            hash_alg: hashes.HashAlgorithm | None = None, pss: bool = False) -> str:
    signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(payload).encode())}"
    pad = padding.PSS(padding.MGF1(hashes.SHA256()), 32) if pss else padding.PKCS1v15()
    signature = key.sign(signing_input.encode(), pad, hash_alg or hashes.SHA256())
    return f"{signing_input}.{b64(signature)}"


def sign_hs(payload: dict, secret: bytes) -> str:
    signing_input = f"{b64(json.dumps({'typ': 'JWT', 'alg': 'HS256'}).encode())}." \
                    f"{b64(json.dumps(payload).encode())}"
    mac = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64(mac)}"


@pytest.fixture(scope="module")
def other_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture
def verify(pda_app, keys, alice):
    def run(token: str, expected: str | None = None, **kwargs) -> object:
        return verify_token(token, expected_domain=expected or alice["domain"], app_id=pda_app.id,
                            keys=keys, **kwargs)
    return run


def publickey_requests(sandbox, host: str, since_id: int) -> list[dict]:
    rows = sandbox.control("GET", "/requests", params={"target": "pda", "path": "publickey",
                                                       "host": host}).json()["requests"]
    return [r for r in rows if r["id"] > since_id]


def last_request_id(sandbox) -> int:
    rows = sandbox.control("GET", "/requests", params={"limit": 1}).json()["requests"]
    return rows[-1]["id"] if rows else 0


def test_decode_claims_of_a_sandbox_token(mint, alice, pda_app):
    token = mint()
    claims = decode_claims(token)
    assert claims.iss == alice["domain"] and claims.application == pda_app.id
    assert claims.application_version == "1.0.0" and len(claims.jti_prefix) == 8
    assert claims.exp - claims.iat == 30 * 86400
    assert idle_expires_at(claims) == claims.iat + IDLE
    assert usable_until(claims) == claims.iat + IDLE
    assert token not in repr(claims) and token.split(".")[2] not in repr(claims)


@pytest.mark.parametrize("garbage", ["", "garbage", "a.b", "a.b.c", "e30.e30.", "e30.W10.x",
                                     "!!.??.**", "eyJhbGciOiJub25lIn0.bm90IGpzb24.x"])
def test_decode_claims_refuses_garbage(garbage):
    with pytest.raises(TokenError):
        decode_claims(garbage)


def test_valid_sandbox_token_passes(verify, mint, alice, pda_app):
    claims = verify(mint())
    assert claims.iss == alice["domain"] and claims.application == pda_app.id
    upper = verify(mint(), expected=alice["domain"].upper())
    assert upper.iss == alice["domain"]


def test_time_checks_use_the_given_clock(verify, mint):
    token = mint()
    claims = decode_claims(token)
    verify(token, now=claims.iat + IDLE - 10)
    verify(token, now=claims.iat + IDLE + 30)  # within the default 60 s skew
    with pytest.raises(TokenError, match="idle"):
        verify(token, now=claims.iat + IDLE + 61)
    with pytest.raises(TokenError, match="idle"):
        verify(token, now=claims.iat + IDLE + 1, skew=0)
    with pytest.raises(TokenError, match="future"):
        verify(token, now=claims.iat - 3600)


@pytest.mark.parametrize("case", [
    "alg_none", "hs256_with_public_pem", "other_rsa_key", "rs384_other_key", "ps256_other_key",
    "wrong_application", "expired_exp", "idle_72h", "missing_application", "missing_exp",
    "missing_jti", "missing_iss", "crit_header", "garbage", "tampered_payload",
])
def test_bad_tokens_are_refused(case, verify, mint, alice, other_key, pda_app):
    real = mint()
    header, payload = parts(real)
    pem = httpx.get(alice["url"] + "/publickey", timeout=30).content
    forged = {
        "alg_none": lambda: f"{b64(json.dumps({'typ': 'JWT', 'alg': 'none'}).encode())}."
                            f"{real.split('.')[1]}.",
        "hs256_with_public_pem": lambda: sign_hs(payload, pem),
        "other_rsa_key": lambda: sign_rs(header, payload, other_key),
        "rs384_other_key": lambda: sign_rs({**header, "alg": "RS384"}, payload, other_key,
                                           hashes.SHA384()),
        "ps256_other_key": lambda: sign_rs({**header, "alg": "PS256"}, payload, other_key, pss=True),
        "wrong_application": lambda: mint(application="someone-else"),
        "expired_exp": lambda: mint(iat_offset=-7200, exp_offset=-120),
        "idle_72h": lambda: mint(iat_offset=-(IDLE + 120)),
        "missing_application": lambda: sign_rs(header, _without(payload, "application"), other_key),
        "missing_exp": lambda: sign_rs(header, _without(payload, "exp"), other_key),
        "missing_jti": lambda: sign_rs(header, _without(payload, "jti"), other_key),
        "missing_iss": lambda: sign_rs(header, _without(payload, "iss"), other_key),
        "crit_header": lambda: sign_rs({**header, "crit": ["x"]}, payload, other_key),
        "garbage": lambda: "definitely.not.a-token",
        "tampered_payload": lambda: ".".join([real.split(".")[0],
                                              b64(json.dumps({**payload, "application": pda_app.id,
                                                              "exp": payload["exp"] + 1}).encode()),
                                              real.split(".")[2]]),
    }[case]()
    with pytest.raises(TokenError) as info:
        verify(forged)
    assert real not in str(info.value) and forged not in str(info.value)
    expected_reason = {"alg_none": "RS256", "hs256_with_public_pem": "RS256",
                       "rs384_other_key": "RS256", "ps256_other_key": "RS256",
                       "other_rsa_key": "signature", "tampered_payload": "signature",
                       "wrong_application": "another application", "expired_exp": "expired",
                       "idle_72h": "idle", "missing_application": "application",
                       "missing_exp": "exp", "missing_jti": "jti", "missing_iss": "iss",
                       "crit_header": "critical"}.get(case)
    if expected_reason:
        assert expected_reason in str(info.value)


def _without(payload: dict, name: str) -> dict:
    return {k: v for k, v in payload.items() if k != name}


def test_wrong_iss_never_fetches_that_hosts_key(verify, mint, sandbox, alice, other_key):
    header, payload = parts(mint())
    evil_host = "evil.localhost:4444"
    since = last_request_id(sandbox)
    with pytest.raises(TokenError, match="another PDA"):
        verify(sign_rs(header, {**payload, "iss": evil_host}, other_key))
    assert publickey_requests(sandbox, evil_host, since) == []
    assert publickey_requests(sandbox, alice["domain"], since) == []


def test_token_of_bob_checked_for_alice_never_fetches_bobs_key(pda_app, http, mint, sandbox):
    alice, bob = sandbox.pda("alice"), sandbox.pda("bob")
    fresh_keys = PublicKeyCache(http, "http", policy=SANDBOX_POLICY)
    since = last_request_id(sandbox)
    with pytest.raises(TokenError, match="another PDA"):
        verify_token(mint("bob"), expected_domain=alice["domain"], app_id=pda_app.id,
                     keys=fresh_keys)
    assert publickey_requests(sandbox, bob["domain"], since) == []
    assert publickey_requests(sandbox, alice["domain"], since) == []
    # and bob's token checked for bob passes, fetching bob's key once
    verify_token(mint("bob"), expected_domain=bob["domain"], app_id=pda_app.id, keys=fresh_keys)
    assert len(publickey_requests(sandbox, bob["domain"], since)) == 1


def test_key_is_cached_and_refetched_once_on_a_bad_signature(pda_app, http, mint, sandbox,
                                                             alice, other_key):
    keys = PublicKeyCache(http, "http", policy=SANDBOX_POLICY, min_refetch_interval=0)
    since = last_request_id(sandbox)
    for _ in range(3):
        verify_token(mint(), expected_domain=alice["domain"], app_id=pda_app.id, keys=keys)
    assert len(publickey_requests(sandbox, alice["domain"], since)) == 1
    header, payload = parts(mint())
    with pytest.raises(TokenError, match="signature"):
        verify_token(sign_rs(header, payload, other_key), expected_domain=alice["domain"],
                     app_id=pda_app.id, keys=keys)
    assert len(publickey_requests(sandbox, alice["domain"], since)) == 2

    throttled = PublicKeyCache(http, "http", policy=SANDBOX_POLICY)  # default: 10 s between refetches
    throttled.get(alice["domain"])
    mark = last_request_id(sandbox)
    for _ in range(3):
        with pytest.raises(TokenError):
            verify_token(sign_rs(header, payload, other_key), expected_domain=alice["domain"],
                         app_id=pda_app.id, keys=throttled)
    assert publickey_requests(sandbox, alice["domain"], mark) == []


def test_public_key_fetch_failures(http, alice, faults):
    keys = PublicKeyCache(http, "http", policy=SANDBOX_POLICY)
    faults(host=alice["domain"], path="/publickey", status=404)
    with pytest.raises(DataswyftHTTPError) as info:
        keys.get(alice["domain"])
    assert info.value.hat_unavailable
    faults(host=alice["domain"], path="/publickey", status=200, body="not a key")
    with pytest.raises(TokenError, match="not a PEM"):
        keys.get(alice["domain"])
    key = keys.get(alice["domain"])  # faults used up: the real key
    assert key.key_size >= 2048


def test_key_cache_applies_its_policy(http, alice):
    strict = PublicKeyCache(http, "http")
    from worker.errors import ValidationError

    with pytest.raises(ValidationError):
        strict.get("127.0.0.1:80")
    with pytest.raises(ValidationError):
        PublicKeyCache(http, "http", policy=type(SANDBOX_POLICY)(allowed_suffixes=("hubat.net",))
                       ).get(alice["domain"])


def test_verify_without_now_uses_the_real_clock(verify, mint):
    assert abs(verify(mint()).iat - time.time()) < 120
