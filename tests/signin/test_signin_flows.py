"""Both sign-in flows over HTTP (a cookie-keeping client, the sandbox auto-approving), and
parked jobs that resume when the user connects again."""

from __future__ import annotations

import uuid
from urllib.parse import parse_qs, urlsplit

import httpx

from producers import Datapost
from tests.delivery.conftest import deliveries, wait_for
from worker.config import load_settings

from .conftest import PDA_NS, connect_only, follow, serving


def test_digime_connect_link_stores_a_credential(app_client, receiver, auto_approve,
                                                 browser_http, sandbox):
    link = app_client.digime_connect_link("alice-app-user")
    assert link.startswith(receiver + "connect/")
    onboarding = connect_only(browser_http, link)
    assert onboarding.startswith(sandbox.onboard_url + "authorize?code=")
    page = follow(browser_http, onboarding)
    assert page.status_code == 200 and "digi.me is connected" in page.text
    cred = app_client.stores.vault.load("digime", "alice-app-user")
    assert cred.postbox_id and "BEGIN RSA PUBLIC KEY" in cred.postbox_public_key
    assert cred.access_token and cred.refresh_token and cred.status == "active"


def test_a_write_after_digime_signin_succeeds(app_client, receiver, auto_approve, browser_http,
                                              run_worker, sandbox):
    follow(browser_http, app_client.digime_connect_link("writer"))
    job_id = app_client.enqueue_digime("writer", b"after sign-in", file_name="a.txt")
    run_worker()
    assert wait_for(app_client, [job_id], {"succeeded"})[job_id]["state"] == "succeeded"


def test_reconnecting_passes_the_existing_token_to_link_the_same_library(
        app_client, receiver, auto_approve, browser_http):
    follow(browser_http, app_client.digime_connect_link("same-library"))
    first = app_client.stores.vault.load("digime", "same-library")
    with httpx.Client(timeout=30) as other:
        follow(other, app_client.digime_connect_link("same-library"))
    second = app_client.stores.vault.load("digime", "same-library")
    assert second.digime_user_id == first.digime_user_id
    assert second.postbox_id == first.postbox_id
    assert second.access_token != first.access_token


def test_pda_connect_link_stores_a_verified_credential(app_client, receiver, auto_approve,
                                                       browser_http, sandbox):
    alice = sandbox.pda("alice")
    link = app_client.dataswyft_connect_link("pda-app-user", alice["domain"])
    target = connect_only(browser_http, link)
    parts = urlsplit(target.replace("/#/hatlogin", "/hatlogin"))
    query = parse_qs(parts.query)
    assert target.startswith(alice["url"] + "/#/hatlogin?name=")
    assert query["redirect"] == [receiver + "dataswyft/return"]
    assert query["fallback"] == [receiver + "dataswyft/fallback"]
    page = follow(browser_http, target)
    assert page.status_code == 200 and "is connected" in page.text
    cred = app_client.stores.vault.load("dataswyft", "pda-app-user")
    assert cred.pda_domain == alice["domain"] and cred.status == "active"


def test_a_write_after_pda_signin_succeeds(app_client, receiver, auto_approve, browser_http,
                                           run_worker, sandbox):
    bob = sandbox.pda("bob")
    follow(browser_http, app_client.dataswyft_connect_link("pda-writer", bob["domain"]))
    job_id = app_client.enqueue_records("pda-writer", PDA_NS, "signin", {"id": uuid.uuid4().hex})
    run_worker()
    assert wait_for(app_client, [job_id], {"succeeded"})[job_id]["state"] == "succeeded"


def test_reconnecting_a_user_with_parked_jobs_delivers_them(app_client, receiver, auto_approve,
                                                             browser_http, run_worker, sandbox,
                                                             mint_user):
    # The user's refresh token was revoked: their jobs park.
    minted = mint_user("parked-user", store=False)
    app_client.store_digime_credential(
        "parked-user", access_token=minted["access_token"]["value"],
        access_expires_at=minted["access_token"]["expires_on"],
        refresh_token=minted["refresh_token"]["value"],
        refresh_expires_at=minted["refresh_token"]["expires_on"],
        postbox_id=minted["postbox_id"], postbox_public_key=minted["public_key"])
    sandbox.control("POST", "/tokens/revoke", json={"refresh_token": minted["refresh_token"]["value"]})
    sandbox.control("POST", "/tokens/expire", json={"access_token": minted["access_token"]["value"]})
    ids = [app_client.enqueue_digime("parked-user", f"p{i}".encode(), file_name="p.txt")
           for i in range(3)]
    run_worker()
    wait_for(app_client, ids, {"parked"})
    # They sign in again: the credential is stored and the parked jobs go back to the queue.
    page = follow(browser_http, app_client.digime_connect_link("parked-user"))
    assert "digi.me is connected" in page.text
    done = wait_for(app_client, ids, {"succeeded"})
    assert all(d["state"] == "succeeded" for d in done.values())
    cred = app_client.stores.vault.load("digime", "parked-user")
    assert len(deliveries(sandbox, user_id=cred.digime_user_id, status="delivered")) == 3


def test_success_and_failure_urls_of_the_app(env, redis_url, receiver_base, registered,
                                             auto_approve, browser_http):
    settings = load_settings({**env, "DATAPOST_CALLBACK_URL": receiver_base,
                              "DATAPOST_CALLBACK_SUCCESS_URL": "https://app.example/done",
                              "DATAPOST_CALLBACK_FAILURE_URL": "https://app.example/oops?x=1"})
    with Datapost.connect(settings, redis_url) as client, serving(client, receiver_base):
        onboarding = connect_only(browser_http, client.digime_connect_link("urls-user"))
        back = browser_http.get(onboarding).headers["location"]  # auto-approved
        done = browser_http.get(back)
        assert done.status_code == 303
        assert done.headers["location"] == "https://app.example/done?provider=digime"
        assert client.stores.vault.load("digime", "urls-user") is not None
        declined = browser_http.get(receiver_base + "digime/return?success=false"
                                    "&errorCode=UserCancelled")
        assert declined.headers["location"] == \
            "https://app.example/oops?x=1&provider=digime&error=UserCancelled"


def test_receiver_health_readiness_and_metrics(app_client, receiver, auto_approve, browser_http):
    from prometheus_client.parser import text_string_to_metric_families

    follow(browser_http, app_client.digime_connect_link("metrics-user"))
    browser_http.get(receiver + "digime/return?success=false&errorCode=UserCancelled")
    assert browser_http.get(receiver + "healthz").json() == {"ok": True}
    assert browser_http.get(receiver + "readyz").json()["ok"] is True
    text = browser_http.get(receiver + "metrics").text
    values = {(s.name, tuple(sorted(s.labels.items()))): s.value
              for f in text_string_to_metric_families(text) for s in f.samples}
    assert values[("datapost_signins_total", (("provider", "digime"), ("result", "connected")))] >= 1
    assert values[("datapost_signins_total", (("provider", "digime"), ("result", "refused")))] >= 1
    assert ("datapost_jobs", (("state", "queued"),)) in values
