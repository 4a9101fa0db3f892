"""Real-browser fixtures for the whole suite: `browser` (one headless Chromium per session,
via Playwright's sync API) and `page` (a fresh browser context per test, so cookies never
leak between tests). Registered once from tests/conftest.py: two sync Playwright instances
cannot run in one thread, so these must not be defined twice."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from tests.browser.chromium import launch_chromium


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    playwright = sync_playwright().start()
    try:
        chromium = launch_chromium(playwright)
        yield chromium
        chromium.close()
    finally:
        playwright.stop()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context()
    try:
        tab = context.new_page()
        tab.set_default_timeout(15000)
        yield tab
    finally:
        context.close()


def keep_screenshot(page: Page, path) -> bool:
    """Save a screenshot for a person to look at. It is an artifact, not a check: Chromium
    sometimes cannot capture one on a loaded machine, and that must not fail a test."""
    from playwright.sync_api import Error

    try:
        page.screenshot(path=str(path), full_page=True)
    except Error:
        return False
    return True
