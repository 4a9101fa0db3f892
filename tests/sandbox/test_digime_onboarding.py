"""digi.me sandbox: the onboarding page (Allow, Deny, auto-approve, bad links)."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from .test_digime_support import (
    REDIRECT,
    authorize,
    auto_approve,
    click,
    onboard_url,
    redirect_params,
    register,
)


@pytest.fixture
def manual(sandbox):
    with auto_approve(sandbox, False):
        yield sandbox


@pytest.fixture
def auto(sandbox):
    with auto_approve(sandbox, True):
        yield sandbox


def test_page_names_the_app_and_has_allow_and_deny(manual):
    contract = register(manual)
    url = onboard_url(manual, authorize(manual, contract)[0])
    page = httpx.get(url)
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert contract.app_id in page.text and contract.contract_id in page.text
    assert ">Allow</button>" in page.text and ">Deny</button>" in page.text
    assert 'method="post" action="/apps/saas/authorize"' in page.text
    assert page.headers["x-frame-options"] == "DENY"


def test_allow_redirects_with_code_state_postbox_and_pkcs1_key(manual):
    contract = register(manual)
    resp, _ = authorize(manual, contract, state="my state&x=1")
    params = redirect_params(click(manual, onboard_url(manual, resp), "allow"))
    assert list(params) == ["success", "code", "state", "postboxId", "publicKey",
                            "accountReference"]
    assert params["success"] == "true" and params["state"] == "my state&x=1"
    pem = params["publicKey"]
    assert pem.startswith("-----BEGIN RSA PUBLIC KEY-----")
    key = serialization.load_pem_public_key(pem.encode())
    assert isinstance(key, rsa.RSAPublicKey) and key.key_size == 2048


def test_public_key_is_percent_encoded_not_plus_encoded(manual):
    contract = register(manual)
    resp, _ = authorize(manual, contract)
    location = click(manual, onboard_url(manual, resp), "allow").headers["location"]
    assert "BEGIN%20RSA%20PUBLIC%20KEY" in location and "+" not in location.split("publicKey=")[1]


def test_deny_redirects_with_user_cancelled(manual):
    contract = register(manual)
    resp, _ = authorize(manual, contract)
    params = redirect_params(click(manual, onboard_url(manual, resp), "deny"))
    assert params == {"success": "false", "errorCode": "UserCancelled", "state": "st-1"}


def test_deny_goes_to_the_v8_callback_when_given(manual):
    contract = register(manual)
    resp, _ = authorize(manual, contract)
    error_url = "http://127.0.0.1:9/digime/error"
    url = onboard_url(manual, resp, callback=error_url)
    params = redirect_params(click(manual, url, "deny"), prefix=error_url)
    assert params["errorCode"] == "UserCancelled"


def test_preauthorization_code_is_single_use(manual):
    contract = register(manual)
    url = onboard_url(manual, authorize(manual, contract)[0])
    redirect_params(click(manual, url, "allow"))
    again = httpx.get(url)
    assert again.status_code == 400 and "already been used" in again.text
    code = parse_qs(urlsplit(url).query)["code"][0]
    post = httpx.post(manual.onboard_url + "authorize", data={"code": code, "decision": "allow"})
    assert post.status_code == 400


@pytest.mark.parametrize("query", ["", "?code=nope", "?code="])
def test_unknown_code_gives_a_clear_html_error(manual, query):
    page = httpx.get(manual.onboard_url + "authorize" + query)
    assert page.status_code == 400 and page.headers["content-type"].startswith("text/html")
    assert "cannot continue" in page.text


def test_bad_form_posts_are_400_pages(manual):
    url = manual.onboard_url + "authorize"
    assert httpx.post(url, data={"code": "x", "decision": "maybe"}).status_code == 400
    assert httpx.post(url, content=b"\xff\x00garbage").status_code == 400


def test_bad_callback_is_refused(manual):
    contract = register(manual)
    url = onboard_url(manual, authorize(manual, contract)[0], callback="javascript:alert(1)")
    page = httpx.get(url)
    assert page.status_code == 400 and "callback" in page.text


def test_auto_approve_redirects_at_once(auto):
    contract = register(auto)
    resp, _ = authorize(auto, contract)
    params = redirect_params(httpx.get(onboard_url(auto, resp)))
    assert params["success"] == "true" and params["code"] and params["postboxId"]


def test_other_onboarding_pages_say_they_are_not_emulated(manual):
    for path in ("onboard", "user-reauth", "reauthorize"):
        page = httpx.get(manual.onboard_url + path + "?code=x")
        assert page.status_code == 501 and "not emulated" in page.text


def test_redirect_target_is_exactly_the_jwt_redirect_uri(manual):
    contract = register(manual)
    resp, _ = authorize(manual, contract, redirect_uri=REDIRECT + "?a=b&")
    location = click(manual, onboard_url(manual, resp), "allow").headers["location"]
    assert location.startswith(REDIRECT + "?a=b&success=true&code=")
