"""The PDA login redirect: password page, consent (Accept / Decline), silent re-login,
error redirects (the %26 quirk, fallback without error info), strict redirect allow-list,
aliases, and auto-approve."""

from __future__ import annotations

import html
import re
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import jwt
from cryptography.hazmat.primitives import serialization

from tests.sandbox.test_pda_support import CALLBACK, new_app, pda, uid


def login_url(p: dict, app: str | None, redirect: str | None = CALLBACK,
              fallback: str | None = None, path: str = "/hatlogin", **extra: str) -> str:
    params = {k: v for k, v in (("name", app), ("redirect", redirect), ("fallback", fallback))
              if v is not None}
    return f"{p['url']}{path}?{urlencode({**params, **extra})}"


def form_fields(page: str) -> dict[str, str]:
    return {m[0]: html.unescape(m[1])
            for m in re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', page)}


def verify(p: dict, token: str) -> dict:
    pem = httpx.get(p["url"] + "/publickey").text
    key = serialization.load_pem_public_key(pem.encode())
    return jwt.decode(token, key, algorithms=["RS256"])


def browser() -> httpx.Client:
    """A cookie-keeping client with its own address for the login rate limiter."""
    return httpx.Client(headers={"X-Forwarded-For": f"10.5.{uid()}"})


def log_in(client: httpx.Client, p: dict, url: str) -> httpx.Response:
    """Open the login URL, submit the right password, return the page after the redirect."""
    page = client.get(url)
    assert page.status_code == 200 and 'type="password"' in page.text and "Log in" in page.text
    fields = form_fields(page.text)
    done = client.post(p["url"] + "/_sandbox/login",
                       data={**fields, "password": "sandbox-password"})
    assert done.status_code == 303
    return client.get(p["url"] + done.headers["location"])


def test_index_page_turns_the_fragment_into_a_path(sandbox):
    p = pda(sandbox)
    for path in ("/", "/some/dashboard/route", "/api/v2.6/data/Bad_NS/x"):
        resp = httpx.get(p["url"] + path)
        assert resp.status_code == 200 and resp.headers["content-type"].startswith("text/html")
        assert "location.replace" in resp.text and "hatlogin" in resp.text


def test_password_then_consent_then_accept_gives_token(sandbox):
    p = pda(sandbox)
    app = new_app(p, ["namespacewrite:login", "managefiles:*"], enable=False)
    with browser() as client:
        wrong = client.get(login_url(p, app))
        bad = client.post(p["url"] + "/_sandbox/login",
                          data={**form_fields(wrong.text), "password": "wrong"})
        assert bad.status_code == 401 and "Incorrect password" in bad.text
        assert 'type="password"' in bad.text
        consent = log_in(client, p, login_url(p, app))
        assert consent.status_code == 200
        assert app in consent.text and ">Accept<" in consent.text and ">Decline<" in consent.text
        assert "login" in consent.text and "upload and manage files" in consent.text
        accepted = client.post(p["url"] + "/_sandbox/consent",
                               data={**form_fields(consent.text), "decision": "accept"})
        assert accepted.status_code == 302
        location = accepted.headers["location"]
        assert location.startswith(CALLBACK + "?token=")
        token = parse_qs(urlsplit(location).query)["token"][0]
        c = verify(p, token)
        assert c["application"] == app and c["iss"] == p["domain"]
        info = httpx.get(p["url"] + "/_control/info").json()
        assert info["apps"][app]["enabled"] is True
        again = client.get(login_url(p, app))  # silent re-login: straight back
        assert again.status_code == 302
        assert again.headers["location"].startswith(CALLBACK + "?token=")


def test_decline_redirects_with_user_cancelled_and_logs_out(sandbox):
    p = pda(sandbox)
    app = new_app(p, ["namespacewrite:login"], enable=False)
    with browser() as client:
        consent = log_in(client, p, login_url(p, app))
        declined = client.post(p["url"] + "/_sandbox/consent",
                               data={**form_fields(consent.text), "decision": "decline"})
        assert declined.status_code == 302
        location = declined.headers["location"]
        assert location == CALLBACK + "?error=access_denied%26error_reason=user_cancelled"
        parsed = parse_qs(urlsplit(location).query)
        assert parsed == {"error": ["access_denied&error_reason=user_cancelled"]}
        after = client.get(login_url(p, app))
        assert after.status_code == 200 and 'type="password"' in after.text  # logged out


def test_decline_with_fallback_goes_to_exactly_fallback(sandbox):
    p = pda(sandbox)
    app = new_app(p, [], enable=False)
    fallback = "http://127.0.0.1:9/pda/fallback?x=1"
    with browser() as client:
        consent = log_in(client, p, login_url(p, app, fallback=fallback))
        declined = client.post(p["url"] + "/_sandbox/consent",
                               data={**form_fields(consent.text), "decision": "decline"})
        assert declined.status_code == 302 and declined.headers["location"] == fallback


def test_consent_without_session_or_csrf_is_refused(sandbox):
    p = pda(sandbox)
    app = new_app(p, [], enable=False)
    resp = httpx.post(p["url"] + "/_sandbox/consent",
                      data={"application_id": app, "redirect_uri": CALLBACK, "decision": "accept"})
    assert resp.status_code == 401 and "location" not in resp.headers
    with browser() as client:
        consent = log_in(client, p, login_url(p, app))
        fields = {**form_fields(consent.text), "csrf": "forged", "decision": "accept"}
        assert client.post(p["url"] + "/_sandbox/consent", data=fields).status_code == 401


def test_parameter_errors_use_the_encoded_ampersand(sandbox):
    p = pda(sandbox)
    missing_app = httpx.get(login_url(p, None))
    assert missing_app.status_code == 302
    assert missing_app.headers["location"] == (
        CALLBACK + "?error=application_misconfigured%26error_reason=application_id_is_required%20")
    unknown = httpx.get(login_url(p, f"unknown-{uid()}", redirect="http://127.0.0.1:9/cb?a=1"))
    assert unknown.headers["location"] == ("http://127.0.0.1:9/cb?a=1?error=application_"
                                           "misconfigured%26error_reason=application_id_not_found%20")
    no_redirect = httpx.get(login_url(p, "whatever", redirect=None))
    assert no_redirect.status_code == 400 and "location" not in no_redirect.headers
    assert "redirect_is_required" in no_redirect.text
    with_fallback = httpx.get(login_url(p, None, fallback="http://127.0.0.1:9/fb"))
    assert with_fallback.headers["location"] == "http://127.0.0.1:9/fb"
    no_redirect_fallback = httpx.get(login_url(p, "x", redirect=None, fallback="http://127.0.0.1:9/f"))
    assert no_redirect_fallback.headers["location"] == "http://127.0.0.1:9/f"


def test_strict_mode_refuses_unregistered_redirects(sandbox):
    p = pda(sandbox)
    app = new_app(p, [], redirects=["http://127.0.0.1:9/exact"])
    for redirect in ("http://127.0.0.1:9/exact/", "http://127.0.0.1:9/exact?x=1",
                     "http://evil.example/exact"):
        resp = httpx.get(login_url(p, app, redirect=redirect, fallback="http://127.0.0.1:9/f"))
        assert resp.status_code == 400 and "location" not in resp.headers
        assert "redirect_uri_not_allowed" in resp.text


def test_aliases_win_and_app_id_is_lower_cased(sandbox):
    p = pda(sandbox)
    app = new_app(p, [])
    with browser() as client:
        log_in(client, p, login_url(p, app))  # owner session (the app is already enabled)
        url = login_url(p, "ignored", redirect="http://ignored.example/",
                        application_id=app.upper(), redirect_uri=CALLBACK)
        resp = client.get(url)
        assert resp.status_code == 302 and resp.headers["location"].startswith(CALLBACK + "?token=")
        for alias in ("/hat-setup-login", "/auth/oauth"):
            resp = client.get(login_url(p, app, path=alias))
            assert resp.status_code == 302 and "token=" in resp.headers["location"]


def test_new_app_version_asks_for_consent_again(sandbox):
    p = pda(sandbox)
    app = new_app(p, ["namespaceread:v"], version="1.0.0")
    with browser() as client:
        log_in(client, p, login_url(p, app))
        assert client.get(login_url(p, app)).status_code == 302
        new_app(p, ["namespaceread:v"], version="2.0.0", enable=False, app_id=app)
        page = client.get(login_url(p, app))
        assert page.status_code == 200 and "updated" in page.text
        accepted = client.post(p["url"] + "/_sandbox/consent",
                               data={**form_fields(page.text), "decision": "accept"})
        token = parse_qs(urlsplit(accepted.headers["location"]).query)["token"][0]
        assert verify(p, token)["applicationVersion"] == "2.0.0"


def test_auto_approve_redirects_at_once_and_enables_the_app(sandbox_factory):
    box = sandbox_factory("--auto-approve", "--pda", "carol")
    p = {**box.pda("carol"), "control": box.control_url}
    redirect = "http://127.0.0.1:9/cb?state=1#frag"
    app = new_app(p, ["namespacewrite:auto"], redirects=[redirect, CALLBACK], enable=False)
    resp = httpx.get(login_url(p, app, redirect=redirect))
    assert resp.status_code == 302
    location = resp.headers["location"]
    assert location.startswith("http://127.0.0.1:9/cb?state=1%23frag&token=")
    token = location.split("&token=", 1)[1]
    assert verify(p, token)["application"] == app
    info = httpx.get(p["url"] + "/_control/info").json()
    assert info["apps"][app]["enabled"] is True
    written = httpx.post(p["url"] + "/api/v2.6/data/auto/x", json={"a": 1},
                         headers={"X-Auth-Token": token})
    assert written.status_code == 201
    internal = httpx.get(login_url(p, app, internal="true"))
    assert internal.headers["location"] == CALLBACK
