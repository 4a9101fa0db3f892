"""The sandbox's own pages in a real browser: the digi.me onboarding page (Allow, Deny) and
the Dataswyft PDA login (fragment link, password, consent, Accept, Decline, wrong password).

Each test ends where a person's browser would: on a small server on 127.0.0.1 (`receiver`)
that records the query the sandbox sent it back with.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from playwright.sync_api import Page, expect

from tests.browser_fixtures import keep_screenshot
from tests.sandbox.test_digime_support import (
    authorize,
    auto_approve,
    onboard_url,
    register,
)

from .conftest import Receiver

PASSWORD = "sandbox-password"  # the PDA owner's default (sandbox/dataswyft/README.md)


def shot(page: Page, tmp_path: Path, name: str) -> Path:
    path = tmp_path / f"{name}.png"
    if keep_screenshot(page, path):
        assert path.stat().st_size > 1000
    return path


def landed(page: Page, receiver: Receiver, path: str) -> dict[str, str]:
    """Wait for the browser to arrive at `path` on the receiver; the query it arrived with."""
    page.wait_for_url(receiver.url(path) + "**")
    raw, params = receiver.last(path)
    assert parse_qs(urlsplit(page.url).query, keep_blank_values=True) == params, (page.url, raw)
    assert all(len(v) == 1 for v in params.values()), params
    return {k: v[0] for k, v in params.items()}


# -- digi.me onboarding ---------------------------------------------------------------------
@pytest.fixture
def manual(sandbox):
    with auto_approve(sandbox, False):
        yield sandbox


def open_onboarding(manual, page: Page, receiver: Receiver, state: str):
    contract = register(manual, redirect_uris=[receiver.url("/digime/return")])
    resp, _verifier = authorize(manual, contract, redirect_uri=receiver.url("/digime/return"),
                                state=state)
    assert resp.status_code == 200, resp.text
    page.goto(onboard_url(manual, resp))
    expect(page.get_by_role("heading", level=1)).to_have_text("digi.me sandbox: authorize")
    expect(page.locator("#app")).to_have_text(contract.app_id)
    expect(page.locator("#contract")).to_have_text(contract.contract_id)
    expect(page.get_by_text(receiver.url("/digime/return"))).to_be_visible()
    return contract


def test_digime_onboarding_allow(manual, page, receiver, tmp_path):
    open_onboarding(manual, page, receiver, state="browser state&1")
    shot(page, tmp_path, "digime-onboarding")
    page.get_by_role("button", name="Allow").click()
    params = landed(page, receiver, "/digime/return")
    assert list(params) == ["success", "code", "state", "postboxId", "publicKey",
                            "accountReference"]
    assert params["success"] == "true" and params["code"] and params["postboxId"]
    assert params["state"] == "browser state&1"
    key = serialization.load_pem_public_key(params["publicKey"].encode())
    assert params["publicKey"].startswith("-----BEGIN RSA PUBLIC KEY-----")
    assert key.key_size == 2048
    expect(page.get_by_role("heading")).to_have_text("Back at the app")


def test_digime_onboarding_deny(manual, page, receiver):
    open_onboarding(manual, page, receiver, state="st-deny")
    page.get_by_role("button", name="Deny").click()
    params = landed(page, receiver, "/digime/return")
    assert params == {"success": "false", "errorCode": "UserCancelled", "state": "st-deny"}


# -- Dataswyft PDA login --------------------------------------------------------------------
@pytest.fixture
def alice(sandbox) -> dict:
    return sandbox.pda("alice")


def new_pda_app(pda: dict, receiver: Receiver, *, enabled: bool = False) -> str:
    """Register an app on the PDA (the PDA's control route registers *and* enables it); unless
    `enabled`, switch it off again so that signing in asks for consent."""
    app = f"browser-{uuid.uuid4().hex[:10]}"
    spec = {"id": app, "version": "1.0.0", "roles": ["namespacewrite:browser", "managefiles:*"],
            "validRedirectUris": [receiver.url("/pda/return")]}
    resp = httpx.post(pda["url"] + "/_control/apps", json=spec)
    assert resp.status_code == 201, resp.text
    if not enabled:
        resp = httpx.post(f"{pda['url']}/_control/apps/{app}/disable")
        assert resp.status_code == 200, resp.text
    return app


def open_login(page: Page, pda: dict, app: str, receiver: Receiver) -> None:
    """The link an app sends people to (the fragment form), up to the password page."""
    # The login rate limiter is keyed by the client address; other tests share 127.0.0.1.
    page.set_extra_http_headers({"X-Forwarded-For": f"10.77.{uuid.uuid4().hex[:8]}"})
    query = urlencode({"name": app, "redirect": receiver.url("/pda/return"),
                       "fallback": receiver.url("/pda/fallback?from=pda")})
    page.goto(f"{pda['url']}/#/hatlogin?{query}")
    page.wait_for_url(f"{pda['url']}/hatlogin?**")  # the index page's script moved us on
    expect(page.get_by_role("heading", level=1)).to_have_text("Log in to your PDA")
    expect(page.get_by_text(f"alice @ {pda['domain']}")).to_be_visible()


def log_in(page: Page, password: str = PASSWORD) -> None:
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()


def test_pda_login_accept_gives_a_token(alice, page, receiver, tmp_path):
    app = new_pda_app(alice, receiver)
    open_login(page, alice, app, receiver)
    shot(page, tmp_path, "pda-password")
    log_in(page)
    expect(page.locator("#app-name")).to_have_text(app)
    expect(page.get_by_role("heading", level=1)).to_contain_text("would like to connect")
    expect(page.locator("#permissions li")).to_have_text(
        ["write data into the namespace browser", "upload and manage files"])
    shot(page, tmp_path, "pda-consent")
    page.get_by_role("button", name="Accept").click()
    params = landed(page, receiver, "/pda/return")
    assert list(params) == ["token"]
    token = params["token"]
    public = httpx.get(alice["url"] + "/publickey").text
    claims = jwt.decode(token, public, algorithms=["RS256"], options={"verify_aud": False})
    assert claims["iss"] == alice["domain"] and claims["application"] == app
    info = httpx.get(alice["url"] + "/_control/info").json()
    assert info["apps"][app]["enabled"] is True


def test_pda_wrong_password_shows_the_error_then_the_right_one_works(alice, page, receiver,
                                                                      tmp_path):
    app = new_pda_app(alice, receiver)
    open_login(page, alice, app, receiver)
    log_in(page, "not-the-password")
    expect(page.get_by_role("alert")).to_have_text("Incorrect password. Please try again.")
    expect(page.get_by_label("Password")).to_be_empty()
    shot(page, tmp_path, "pda-wrong-password")
    log_in(page)
    expect(page.locator("#app-name")).to_have_text(app)
    assert receiver.hits == []


def test_pda_decline_lands_on_the_fallback_with_nothing_added(alice, page, receiver):
    app = new_pda_app(alice, receiver)
    open_login(page, alice, app, receiver)
    log_in(page)
    page.get_by_role("button", name="Decline").click()
    page.wait_for_url(receiver.url("/pda/fallback?from=pda"))
    assert receiver.hits == ["/pda/fallback?from=pda"]
    info = httpx.get(alice["url"] + "/_control/info").json()
    assert info["apps"][app]["enabled"] is False


def test_pda_enabled_app_needs_only_the_password(alice, page, receiver):
    app = new_pda_app(alice, receiver, enabled=True)
    open_login(page, alice, app, receiver)
    log_in(page)
    params = landed(page, receiver, "/pda/return")
    assert list(params) == ["token"] and jwt.decode(
        params["token"], options={"verify_signature": False})["iss"] == alice["domain"]
