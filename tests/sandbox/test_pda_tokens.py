"""PDA tokens: /publickey, RS256 and claim shape, the 30-day / 72-hour rules, renewal,
owner password login with its rate limiter, multi-tenancy by Host."""

from __future__ import annotations

import re
import time

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization

from tests.sandbox.test_pda_support import (
    api,
    auth,
    claims,
    header,
    mint,
    new_app,
    pda,
    reset_clock,
    shift_clock,
    uid,
)

NOT_AUTHENTICATED = {"error": "Not Authenticated", "message": "Not Authenticated"}
FORBIDDEN = {"error": "Forbidden", "message": "Access Denied"}


@pytest.fixture
def clock(sandbox):
    yield lambda seconds: shift_clock(sandbox, seconds)
    reset_clock(sandbox)


def public_key(p: dict):
    resp = httpx.get(p["url"] + "/publickey")
    assert resp.status_code == 200
    assert resp.headers["content-type"] == "text/plain; charset=utf-8"
    pem = resp.text
    assert pem.startswith("-----BEGIN PUBLIC KEY-----\n")
    assert pem.endswith("-----END PUBLIC KEY-----\n")
    body = pem.strip().splitlines()[1:-1]
    assert all(len(line) == 64 for line in body[:-1]) and 0 < len(body[-1]) <= 64
    return serialization.load_pem_public_key(pem.encode())


def test_app_token_verifies_with_publickey_and_has_the_hat_claims(sandbox):
    p = pda(sandbox)
    app = new_app(p, ["namespacewrite:x"], version="2.3.4")
    token = mint(p, app)
    key = public_key(p)
    assert key.key_size == 2048
    verified = jwt.decode(token, key, algorithms=["RS256"], options={"verify_exp": True})
    assert header(token) == {"typ": "JWT", "alg": "RS256"}
    first_segment = jwt.utils.base64url_decode(token.split(".")[0]).decode()
    assert first_segment == '{"typ":"JWT","alg":"RS256"}'
    assert verified["iss"] == p["domain"]
    assert verified["application"] == app and verified["applicationVersion"] == "2.3.4"
    assert re.fullmatch(r"[0-9a-f]{256}", verified["jti"])
    assert verified["sub"].startswith("1-") and p["name"] not in verified["sub"]
    assert verified["exp"] - verified["iat"] == 30 * 86400
    assert abs(verified["iat"] - time.time()) < 60
    assert "accessScope" not in verified


def test_owner_token_from_password_login(sandbox):
    p = pda(sandbox)
    info = httpx.get(p["url"] + "/_control/info").json()
    resp = httpx.get(p["url"] + "/users/access_token",
                     headers={"username": info["owner"], "password": info["password"],
                              "X-Forwarded-For": f"10.9.{uid()}"})
    assert resp.status_code == 200
    body = resp.json()
    assert set(body) == {"accessToken", "userId"} and body["userId"] == info["userId"]
    assert resp.headers["x-auth-token"] == body["accessToken"]
    c = jwt.decode(body["accessToken"], public_key(p), algorithms=["RS256"])
    assert c["accessScope"] == "owner" and c["resource"] == p["domain"]
    assert "application" not in c


def test_password_login_url_decodes_headers_and_rejects_wrong_password(sandbox):
    p = pda(sandbox)
    ip = {"X-Forwarded-For": f"10.8.{uid()}"}
    wrong = httpx.get(p["url"] + "/users/access_token",
                      headers={"username": "alice", "password": "nope", **ip})
    assert wrong.status_code == 401 and wrong.json() == NOT_AUTHENTICATED
    assert "x-auth-token" not in wrong.headers
    encoded = httpx.get(p["url"] + "/users/access_token",
                        headers={"username": "alice", "password": "sandbox%2Dpassword", **ip})
    assert encoded.status_code == 200


def test_password_login_rate_limit_is_a_400_with_details(sandbox):
    p = pda(sandbox)
    ip = {"X-Forwarded-For": f"10.7.{uid()}"}
    statuses = [httpx.get(p["url"] + "/users/access_token",
                          headers={"username": "alice", "password": "bad", **ip}).status_code
                for _ in range(10)]
    assert statuses == [401] * 10
    limited = httpx.get(p["url"] + "/users/access_token",
                        headers={"username": "alice", "password": "sandbox-password", **ip})
    assert limited.status_code == 400
    assert limited.json() == {"message": "Request rate exceeded",
                              "cause": "Rate of requests from your IP exceeded",
                              "details": ["Request to /users/access_token"]}
    assert "retry-after" not in limited.headers
    other_ip = httpx.get(p["url"] + "/users/access_token",
                         headers={"username": "alice", "password": "sandbox-password",
                                  "X-Forwarded-For": f"10.6.{uid()}"})
    assert other_ip.status_code == 200


def test_validate_renews_iat_only(sandbox):
    p = pda(sandbox)
    app = new_app(p, [])
    token = mint(p, app, iat_offset=-3600)
    resp = httpx.get(p["url"] + "/users/access_token/validate", headers=auth(token))
    assert resp.status_code == 200 and resp.json() == {"message": "Authenticated"}
    renewed = resp.headers["x-auth-token"]
    before, after = claims(token), claims(renewed)
    assert after["iat"] >= before["iat"] + 3599
    assert {k: v for k, v in after.items() if k != "iat"} == \
        {k: v for k, v in before.items() if k != "iat"}
    jwt.decode(renewed, public_key(p), algorithms=["RS256"])


def test_token_in_query_parameter_is_accepted(sandbox):
    p = pda(sandbox)
    token = mint(p)
    resp = httpx.get(p["url"] + "/users/access_token/validate", params={"X-Auth-Token": token})
    assert resp.status_code == 200 and resp.headers["x-auth-token"]


@pytest.mark.parametrize("bad", ["", "garbage", "a.b.c"])
def test_garbage_tokens_get_401_without_renewal(sandbox, bad):
    p = pda(sandbox)
    resp = httpx.get(p["url"] + "/users/access_token/validate", headers={"X-Auth-Token": bad})
    assert resp.status_code == 401 and resp.json() == NOT_AUTHENTICATED
    assert "x-auth-token" not in resp.headers


def test_tampered_and_foreign_tokens_are_401(sandbox):
    alice, bob = pda(sandbox, "alice"), pda(sandbox, "bob")
    token = mint(alice)
    head, body, sig = token.split(".")
    flipped = head + "." + body + "." + ("A" if sig[0] != "A" else "B") + sig[1:]
    for bad in (flipped, mint(bob)):
        resp = httpx.get(alice["url"] + "/users/access_token/validate", headers=auth(bad))
        assert resp.status_code == 401 and "x-auth-token" not in resp.headers


def test_two_pdas_have_their_own_keys_and_issuers(sandbox):
    alice, bob = pda(sandbox, "alice"), pda(sandbox, "bob")
    ka, kb = public_key(alice), public_key(bob)
    assert ka.public_numbers() != kb.public_numbers()
    ta, tb = mint(alice), mint(bob)
    assert jwt.decode(ta, ka, algorithms=["RS256"])["iss"] == alice["domain"]
    assert jwt.decode(tb, kb, algorithms=["RS256"])["iss"] == bob["domain"]
    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(ta, kb, algorithms=["RS256"])


def test_idle_rule_iat_plus_72_hours(sandbox):
    p = pda(sandbox)
    fresh_enough = mint(p, iat_offset=-(72 * 3600 - 120))
    stale = mint(p, iat_offset=-(72 * 3600 + 60))
    ok = httpx.get(p["url"] + "/users/access_token/validate", headers=auth(fresh_enough))
    assert ok.status_code == 200
    bad = httpx.get(p["url"] + "/users/access_token/validate", headers=auth(stale))
    assert bad.status_code == 401 and bad.json() == NOT_AUTHENTICATED


def test_renewal_keeps_a_token_alive_but_not_past_30_days(sandbox, clock):
    p = pda(sandbox)
    token = mint(p)
    exp = claims(token)["exp"]
    for _ in range(11):  # 11 x 71 h = 32.5 days of renewals, each within the idle window
        clock(71 * 3600)
        resp = httpx.get(p["url"] + "/users/access_token/validate", headers=auth(token))
        if resp.status_code != 200:
            break
        token = resp.headers["x-auth-token"]
        assert claims(token)["exp"] == exp
    assert resp.status_code == 401
    assert claims(token)["iat"] < exp <= claims(token)["iat"] + 71 * 3600


def test_exp_is_enforced_even_when_recently_used(sandbox):
    p = pda(sandbox)
    expired = mint(p, exp_offset=-1)
    resp = httpx.get(p["url"] + "/users/access_token/validate", headers=auth(expired))
    assert resp.status_code == 401


def test_unrenewed_token_dies_after_72_hours_of_clock(sandbox, clock):
    p = pda(sandbox)
    token = mint(p)
    clock(72 * 3600 + 5)
    resp = httpx.get(p["url"] + "/users/access_token/validate", headers=auth(token))
    assert resp.status_code == 401


def test_renewal_on_2xx_400_404_and_403_but_not_401(sandbox):
    p = pda(sandbox)
    app = new_app(p, ["namespacewrite:renewal", "namespaceread:renewal"])
    token = mint(p, app)
    url = api(p) + "/data/renewal/things"
    ok = httpx.post(url, json={"n": uid()}, headers=auth(token))
    assert ok.status_code == 201 and ok.headers["x-auth-token"]
    dup_body = {"n": uid()}
    httpx.post(url, json=dup_body, headers=auth(token))
    dup = httpx.post(url, json=dup_body, headers=auth(token))
    assert dup.status_code == 400 and dup.headers["x-auth-token"]
    forbidden = httpx.post(api(p) + "/data/elsewhere/things", json={"n": 1}, headers=auth(token))
    assert forbidden.status_code == 403 and forbidden.json() == FORBIDDEN
    assert forbidden.headers["x-auth-token"]
    missing = httpx.put(api(p) + "/files/file/nope.txt/complete", headers=auth(mint(p)))
    assert missing.status_code == 404 and missing.headers["x-auth-token"]
    unauth = httpx.post(url, json={"n": uid()})
    assert unauth.status_code == 401 and "x-auth-token" not in unauth.headers
    assert unauth.json() == NOT_AUTHENTICATED


def test_html_only_clients_get_303_for_401_and_403(sandbox):
    p = pda(sandbox)
    resp = httpx.get(api(p) + "/data/x/y", headers={"Accept": "text/html"})
    assert resp.status_code == 303 and resp.headers["location"] == "/"
    assert "Accept" in resp.headers["vary"]
    app = new_app(p, [])
    forbidden = httpx.get(api(p) + "/data/x/y",
                          headers={"Accept": "text/html", **auth(mint(p, app))})
    assert forbidden.status_code == 303 and forbidden.headers["x-auth-token"]
    json_ok = httpx.get(api(p) + "/data/x/y", headers={"Accept": "*/*"})
    assert json_ok.status_code == 401 and json_ok.json() == NOT_AUTHENTICATED


def test_disabled_or_unknown_app_gets_403_not_401(sandbox):
    p = pda(sandbox)
    app = new_app(p, ["namespaceread:gone"])
    token = mint(p, app)
    url = api(p) + "/data/gone/x"
    assert httpx.get(url, headers=auth(token)).status_code == 200
    assert httpx.post(p["url"] + f"/_control/apps/{app}/disable").status_code == 200
    resp = httpx.get(url, headers=auth(token))
    assert resp.status_code == 403 and resp.json() == FORBIDDEN
    unknown = mint(p, f"never-registered-{uid()}")
    assert httpx.get(url, headers=auth(unknown)).status_code == 403


def test_unknown_host_is_hat_unavailable(sandbox):
    p = pda(sandbox)
    port = p["domain"].split(":")[1]
    for host in (f"127.0.0.1:{port}", "somebody.hubat.net"):
        resp = httpx.get(f"http://127.0.0.1:{port}/publickey", headers={"Host": host})
        assert resp.status_code == 404
        assert resp.json() == {"error": "Not Found", "message": "HAT unavailable"}
    upper = httpx.get(f"http://127.0.0.1:{port}/publickey", headers={"Host": p["domain"].upper()})
    assert upper.status_code == 200


def test_cors_preflight_and_exposed_header(sandbox):
    p = pda(sandbox)
    pre = httpx.options(api(p) + "/data/x/y", headers={
        "Origin": "http://localhost:3000", "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "x-auth-token,content-type"})
    assert pre.status_code == 204
    allowed = pre.headers["access-control-allow-headers"].lower()
    assert "x-auth-token" in allowed and "content-type" in allowed
    for method in ("GET", "POST", "PUT", "DELETE"):
        assert method in pre.headers["access-control-allow-methods"]
    resp = httpx.get(p["url"] + "/users/access_token/validate",
                     headers={"Origin": "http://localhost:3000", **auth(mint(p))})
    assert resp.headers["access-control-allow-origin"] == "http://localhost:3000"
    assert "X-Auth-Token" in resp.headers["access-control-expose-headers"]
