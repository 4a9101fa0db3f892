"""Finding and launching a Chromium for the browser tests (reused by the sign-in tests).

Order: `$DATAPOST_CHROMIUM`, then the system `chromium` (`/usr/bin/chromium` or on PATH), then
the Chromium Playwright installed itself, then `python -m playwright install chromium` (once)
and that one. If nothing works the tests fail with instructions; they are never skipped.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

# Headless and quiet: without the background-networking flags Chromium opens connections of
# its own (updates, sync, field trials) that some sandboxed machines refuse in bulk.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]

HOW_TO_GET_ONE = (
    "The browser tests need Chromium. Any one of these works:\n"
    "  - install the system package (Debian/Ubuntu: `sudo apt-get install chromium`),\n"
    "  - run `.venv/bin/python -m playwright install chromium` (needs internet access),\n"
    "  - or point DATAPOST_CHROMIUM at a Chromium/Chrome executable."
)

_install_tried = False


def _executable(path: str | os.PathLike[str] | None) -> str | None:
    if path and Path(path).is_file() and os.access(path, os.X_OK):
        return str(path)
    return None


def system_chromium() -> str | None:
    return _executable("/usr/bin/chromium") or _executable(shutil.which("chromium"))


def playwright_chromium(playwright) -> str | None:
    """The Chromium `playwright install` put in its cache, if it is there."""
    try:
        return _executable(playwright.chromium.executable_path)
    except Exception:  # Playwright raises when it has no build for this platform
        return None


def install_playwright_chromium() -> str:
    """Run `python -m playwright install chromium` (at most once per process); its output."""
    global _install_tried
    if _install_tried:
        return "(already tried in this run)"
    _install_tried = True
    try:
        done = subprocess.run([sys.executable, "-m", "playwright", "install", "chromium"],
                              capture_output=True, text=True, timeout=900,
                              stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"could not run it: {exc}"
    return f"exit {done.returncode}: {(done.stdout + done.stderr).strip()[:1200]}"


def find_chromium(playwright) -> str:
    """The Chromium executable to use, installing Playwright's own as a last resort."""
    wanted = os.environ.get("DATAPOST_CHROMIUM")
    if wanted:
        found = _executable(wanted) or _executable(shutil.which(wanted))
        if found is None:
            pytest.fail(f"DATAPOST_CHROMIUM={wanted!r} is not an executable file.\n{HOW_TO_GET_ONE}",
                        pytrace=False)
        return found
    found = system_chromium() or playwright_chromium(playwright)
    if found:
        return found
    report = install_playwright_chromium()
    found = playwright_chromium(playwright)
    if found:
        return found
    pytest.fail("No Chromium found: not DATAPOST_CHROMIUM, not /usr/bin/chromium or `chromium` on "
                "PATH, not Playwright's own, and `python -m playwright install chromium` did not "
                f"provide one ({report}).\n{HOW_TO_GET_ONE}", pytrace=False)


def launch_chromium(playwright):
    """A headless Browser on the Chromium `find_chromium` picked (a fresh profile each launch:
    Playwright gives every `launch()` its own temporary user-data dir)."""
    executable = find_chromium(playwright)
    try:
        return playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS,
                                          headless=True, timeout=60_000)
    except Exception as exc:
        pytest.fail(f"Chromium at {executable} did not start: {exc}\n"
                    "If it is Playwright's own build on Linux, it may lack system libraries: "
                    f"`sudo .venv/bin/python -m playwright install-deps chromium`.\n{HOW_TO_GET_ONE}",
                    pytrace=False)
