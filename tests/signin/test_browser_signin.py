"""Both sign-in flows in headless Chromium through the sandbox's own pages: click Allow /
type the password and Accept, land on the success page, then a write for that user succeeds.
Declining lands on the failure page."""

from __future__ import annotations

import uuid

import httpx
import pytest

from tests.browser_fixtures import keep_screenshot
from tests.delivery.conftest import wait_for

from .conftest import PDA_APP, PDA_NS


@pytest.fixture
def consent_needed(sandbox):
    """Our app registered but not yet enabled on alice, so the consent page shows."""
    alice = sandbox.pda("alice")
    httpx.post(f"{alice['url']}/_control/apps/{PDA_APP}/disable", timeout=30)
    yield alice
    httpx.post(f"{alice['url']}/_control/apps/{PDA_APP}/enable", timeout=30)


def pda_login(page, password: str = "sandbox-password") -> None:
    page.fill("input[type=password]", password)
    page.get_by_role("button", name="Log in").click()


def test_digime_allow_in_a_browser_then_a_write_succeeds(app_client, receiver, page,
                                                         run_worker, tmp_path):
    page.goto(app_client.digime_connect_link("browser-digime"))
    assert "authorize" in page.url  # the sandbox's onboarding page
    keep_screenshot(page, tmp_path / "onboarding.png")
    page.get_by_role("button", name="Allow").click()
    page.wait_for_url(receiver + "digime/return*")
    assert page.get_by_role("heading").inner_text() == "digi.me is connected"
    keep_screenshot(page, tmp_path / "connected.png")
    job_id = app_client.enqueue_digime("browser-digime", b"from the browser", file_name="b.txt")
    run_worker()
    assert wait_for(app_client, [job_id], {"succeeded"})[job_id]["state"] == "succeeded"


def test_digime_deny_lands_on_the_failure_page(app_client, receiver, page):
    page.goto(app_client.digime_connect_link("browser-denier"))
    page.get_by_role("button", name="Deny").click()
    page.wait_for_url(receiver + "digime/return*")
    assert page.get_by_role("heading").inner_text() == "digi.me was not connected"
    assert "UserCancelled" in page.content()
    assert app_client.stores.vault.load("digime", "browser-denier") is None


def test_pda_password_and_accept_then_a_write_succeeds(app_client, receiver, page,
                                                       consent_needed, run_worker, tmp_path):
    page.set_extra_http_headers({"X-Forwarded-For": f"10.9.{uuid.uuid4().int % 250}.1"})
    page.goto(app_client.dataswyft_connect_link("browser-pda", consent_needed["domain"]))
    pda_login(page)
    keep_screenshot(page, tmp_path / "consent.png")
    page.get_by_role("button", name="Accept").click()
    page.wait_for_url(receiver + "dataswyft/return*")
    assert page.get_by_role("heading").inner_text() == "Your PDA is connected"
    cred = app_client.stores.vault.load("dataswyft", "browser-pda")
    assert cred.pda_domain == consent_needed["domain"]
    job_id = app_client.enqueue_records("browser-pda", PDA_NS, "browser", {"id": uuid.uuid4().hex})
    run_worker()
    assert wait_for(app_client, [job_id], {"succeeded"})[job_id]["state"] == "succeeded"


def test_pda_decline_lands_on_the_failure_page(app_client, receiver, page,
                                               consent_needed):
    page.set_extra_http_headers({"X-Forwarded-For": f"10.8.{uuid.uuid4().int % 250}.1"})
    page.goto(app_client.dataswyft_connect_link("browser-pda-decliner", consent_needed["domain"]))
    pda_login(page)
    page.get_by_role("button", name="Decline").click()
    page.wait_for_url(receiver + "dataswyft/fallback*")
    assert page.get_by_role("heading").inner_text() == "Your PDA was not connected"
    assert "declined" in page.content()
    assert app_client.stores.vault.load("dataswyft", "browser-pda-decliner") is None
