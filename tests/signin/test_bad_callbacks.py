"""Every malformed, replayed, cross-browser or forged callback gets a clear error page,
never a 500, and stores nothing."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from urllib.parse import parse_qsl, urlencode, urlsplit

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from .conftest import PDA_APP, connect_only

OTHER_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)


# -- digi.me --------------------------------------------------------------------------

@pytest.fixture
def digime_return(app_client, receiver, auto_approve, browser_http):
    """A genuine digi.me return URL (auto-approved), not yet delivered to the receiver."""

    def make(user: str = "bad-digime-user") -> tuple[str, dict]:
        onboarding = connect_only(browser_http, app_client.digime_connect_link(user))
        back = browser_http.get(onboarding).headers["location"]
        return back, dict(parse_qsl(urlsplit(back).query))

    return make


def receiver_get(client: httpx.Client, receiver: str, path: str, params) -> httpx.Response:
    query = params if isinstance(params, str) else urlencode(params)
    resp = client.get(f"{receiver}{path}?{query}")
    assert resp.status_code < 500, resp.text
    return resp


def nothing_stored(app_client, provider: str, user: str) -> None:
    assert app_client.stores.vault.load(provider, user) is None


def weak_pkcs1() -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    return key.public_key().public_bytes(serialization.Encoding.PEM,
                                         serialization.PublicFormat.PKCS1).decode()


@pytest.mark.parametrize(("change", "status", "text"), [
    (lambda q: {}, 400, "must say success=true"),
    (lambda q: {k: v for k, v in q.items() if k != "code"}, 400, "lacks code"),
    (lambda q: {k: v for k, v in q.items() if k != "state"}, 400, "lacks"),
    (lambda q: urlencode(q) + "&code=again", 400, "more than once"),
    (lambda q: {**q, "state": "x" * 43}, 400, "another browser"),
    (lambda q: {**q, "code": "not-a-code-the-sandbox-issued"}, 400, "did not accept"),
    (lambda q: {**q, "publicKey": "garbage"}, 400, "postbox key we cannot use"),
    (lambda q: {**q, "publicKey": weak_pkcs1()}, 400, "postbox key we cannot use"),
    (lambda q: {k: v for k, v in q.items() if k != "publicKey"}, 400, "half of the postbox"),
    (lambda q: {**q, "junk": "x" * 20_000}, 400, "too long"),
])
def test_bad_digime_returns(app_client, receiver, digime_return, browser_http, change, status,
                            text):
    _, query = digime_return()
    resp = receiver_get(browser_http, receiver, "digime/return", change(query))
    assert resp.status_code == status and text in resp.text
    assert resp.headers["content-type"].startswith("text/html")
    nothing_stored(app_client, "digime", "bad-digime-user")


def test_a_state_from_another_browser_does_not_consume_it(app_client, receiver, digime_return,
                                                          browser_http):
    back, _ = digime_return()
    with httpx.Client(timeout=30) as attacker:
        resp = attacker.get(back)
        assert resp.status_code == 400 and "another browser" in resp.text
    nothing_stored(app_client, "digime", "bad-digime-user")
    assert "is connected" in browser_http.get(back).text  # the real browser still completes


def test_reused_and_expired_states(app_client, receiver, digime_return, browser_http):
    back, query = digime_return("reused-user")
    assert "is connected" in browser_http.get(back).text
    assert "dp_signin_digime" not in browser_http.cookies  # cleared after use
    browser_http.cookies.set("dp_signin_digime", query["state"])
    again = browser_http.get(back)
    assert again.status_code == 410 and "already used" in again.text
    back2, query2 = digime_return("expired-user")
    app_client.stores.redis.delete(f"datapost:signin:{query2['state']}")  # TTL ran out
    browser_http.cookies.set("dp_signin_digime", query2["state"])
    expired = browser_http.get(back2)
    assert expired.status_code == 410 and "expired" in expired.text
    nothing_stored(app_client, "digime", "expired-user")


def test_unknown_connect_links_and_second_opens(app_client, receiver, browser_http):
    assert browser_http.get(receiver + "connect/" + "A" * 43).status_code == 410
    assert browser_http.get(receiver + "connect/bad!state").status_code == 410
    link = app_client.digime_connect_link("twice-user")
    assert browser_http.get(link).status_code == 302
    with httpx.Client(timeout=30) as other:
        second = other.get(link)
        assert second.status_code == 409 and "already opened" in second.text


def test_declined_digime_goes_to_the_failure_page(app_client, receiver, browser_http):
    connect_only(browser_http, app_client.digime_connect_link("decliner"))
    resp = receiver_get(browser_http, receiver, "digime/return",
                        {"success": "false", "errorCode": "UserCancelled"})
    assert resp.status_code == 400 and "UserCancelled" in resp.text
    nothing_stored(app_client, "digime", "decliner")


# -- Dataswyft ------------------------------------------------------------------------

def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def claims_of(token: str) -> dict:
    return json.loads(base64.urlsafe_b64decode(token.split(".")[1] + "=="))


def mint(pda: dict, **body) -> str:
    return httpx.post(pda["url"] + "/_control/token", json={"application": PDA_APP, **body},
                      timeout=30).json()["token"]


def forge(kind: str, sandbox) -> str:
    alice, bob = sandbox.pda("alice"), sandbox.pda("bob")
    good = mint(alice)
    claims = claims_of(good)
    if kind == "alg_none":
        header = b64(b'{"alg":"none","typ":"JWT"}')
        return f"{header}.{good.split('.')[1]}."
    if kind == "hs256_with_public_key":
        pem = httpx.get(alice["url"] + "/publickey", timeout=30).content
        head = b64(b'{"alg":"HS256","typ":"JWT"}') + "." + good.split(".")[1]
        sig = hmac.new(pem, head.encode(), hashlib.sha256).digest()
        return f"{head}.{b64(sig)}"
    if kind == "other_key":
        return jwt.encode(claims, OTHER_KEY, algorithm="RS256")
    if kind == "wrong_iss":
        return jwt.encode({**claims, "iss": "evil.localhost:1"}, OTHER_KEY, algorithm="RS256")
    if kind == "other_pda":
        return mint(bob)  # genuine, but from a PDA the user was not sent to
    if kind == "wrong_application":
        return mint(alice, application="someone-else")
    if kind == "expired":
        return mint(alice, iat_offset=-31 * 86400, exp_offset=-86400)
    if kind == "idle":
        return mint(alice, iat_offset=-(72 * 3600 + 120))
    if kind == "missing_claims":
        return jwt.encode({"iss": claims["iss"]}, OTHER_KEY, algorithm="RS256")
    return {"garbage": "not-a-jwt", "three_dots": "a.b.c"}[kind]


FORGERIES = ["alg_none", "hs256_with_public_key", "other_key", "wrong_iss", "other_pda",
             "wrong_application", "expired", "idle", "missing_claims", "garbage", "three_dots"]


@pytest.mark.parametrize("kind", FORGERIES)
def test_forged_pda_tokens_are_refused_and_nothing_is_stored(app_client, receiver, sandbox,
                                                             browser_http, kind):
    alice = sandbox.pda("alice")
    link = app_client.dataswyft_connect_link("forged-user", alice["domain"])
    state = link.rsplit("/", 1)[1]
    connect_only(browser_http, link)
    sandbox.control("DELETE", "/requests")
    resp = receiver_get(browser_http, receiver, "dataswyft/return", {"token": forge(kind, sandbox)})
    assert resp.status_code == 400 and "could not be accepted" in resp.text
    nothing_stored(app_client, "dataswyft", "forged-user")
    if kind in ("wrong_iss", "other_pda"):  # refused before any key was fetched
        log = sandbox.control("GET", "/requests", params={"path": "publickey"}).json()
        assert log["requests"] == []
    # the state was used up (and the cookie cleared): a replay finds no pending sign-in
    assert not app_client.stores.redis.exists(f"datapost:signin:{state}")
    assert "dp_signin_dataswyft" not in browser_http.cookies
    browser_http.cookies.set("dp_signin_dataswyft", state)
    assert browser_http.get(f"{receiver}dataswyft/return?token={mint(alice)}").status_code == 410


@pytest.mark.parametrize(("query", "text"), [
    ("error=access_denied%26error_reason=user_cancelled", "access_denied: user_cancelled"),
    ("error=application_misconfigured%26error_reason=application_id_not_found%20",
     "application_id_not_found"),
    ("", "lacks token"),
    ("token=a&token=b", "more than once"),
])
def test_pda_error_forms(app_client, receiver, sandbox, browser_http, query, text):
    connect_only(browser_http, app_client.dataswyft_connect_link("pda-err", sandbox.pda("alice")["domain"]))
    resp = receiver_get(browser_http, receiver, "dataswyft/return", query)
    assert resp.status_code == 400 and text in resp.text
    nothing_stored(app_client, "dataswyft", "pda-err")


def test_pda_fallback_and_missing_cookie(app_client, receiver, sandbox, browser_http):
    token = mint(sandbox.pda("alice"))
    with httpx.Client(timeout=30) as stranger:
        resp = stranger.get(f"{receiver}dataswyft/return?token={token}")
        assert resp.status_code == 400 and "another browser" in resp.text
    connect_only(browser_http, app_client.dataswyft_connect_link("fallback-user",
                                                                 sandbox.pda("alice")["domain"]))
    resp = browser_http.get(receiver + "dataswyft/fallback")
    assert resp.status_code == 400 and "declined" in resp.text
    nothing_stored(app_client, "dataswyft", "fallback-user")


def test_connect_link_input_is_validated(app_client):
    from producers import ValidationError

    for domain in ("127.0.0.1", "evil.example.com", "alice.localhost:1/path", ""):
        with pytest.raises(ValidationError):
            app_client.dataswyft_connect_link("someone", domain)
    with pytest.raises(ValidationError):
        app_client.digime_connect_link("")
