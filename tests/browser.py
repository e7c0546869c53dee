"""A real headless Chromium (Debian's, driven by Playwright) for the admin's browser tests.

`make test` installs Debian's chromium first when /usr/bin/chromium is missing (`make
browser`); CHROMIUM=/path/to/it names another. Without one a browser test fails: it is
never skipped, so a CI without a browser cannot pass by not running it.

Playwright's sync API keeps an asyncio loop running in this thread while a browser is open,
and Django refuses database queries from a thread with a running loop; so a test uses the
database before the browser starts and after it closes, never in between.
"""

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page, Response, expect, sync_playwright

CHROMIUM = Path(os.environ.get("CHROMIUM") or "/usr/bin/chromium")
# Headless, and quiet: on a closed network Chromium's own background connections
# (updates, sync, field trials) are refused, and without these flags that gets in the way.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
PASSWORD = "a-browser-test-password"
# The page polls every second and the worker looks for a cancel every second or so; this
# leaves room for a slow machine without letting a page that never updates pass.
SECONDS = 20


@contextlib.contextmanager
def chromium_page(tmp_path: Path) -> Iterator[Page]:
    """A page in a fresh headless Chromium. Should the block fail, a screenshot of the
    page is saved beside the test's other files and its path printed."""
    if not CHROMIUM.exists():
        pytest.fail(
            f"no Chromium at {CHROMIUM}: `make browser` (run by `make test`) installs "
            "Debian's (apt-get install chromium), or name one with CHROMIUM=/path/to/it"
        )
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            page.set_default_timeout(SECONDS * 1000)
            expect.set_options(timeout=SECONDS * 1000)
            try:
                yield page
            except BaseException:
                screenshot = tmp_path / "failure.png"
                with contextlib.suppress(Exception):
                    page.screenshot(path=screenshot, full_page=True)
                    print(f"\nscreenshot of the page when the test failed: {screenshot}")
                raise
        finally:
            browser.close()


def page_problems(page: Page) -> list[str]:
    """What goes wrong on `page` from now on: script errors and failed requests."""
    problems: list[str] = []

    def answered(response: Response) -> None:
        # Chromium asks for /favicon.ico by itself; admin has none.
        if response.status >= 400 and not response.url.endswith("/favicon.ico"):
            problems.append(f"HTTP {response.status}: {response.url}")

    page.on("pageerror", lambda error: problems.append(f"script error: {error}"))
    page.on("requestfailed", lambda request: problems.append(f"failed: {request.url}"))
    page.on("response", answered)
    return problems


def log_in(page: Page, server: str, username: str = "admin") -> None:
    """Log in through admin's login form, as a person does."""
    page.goto(f"{server}/admin/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    with page.expect_navigation():
        page.click("input[type=submit]")
    expect(page.locator("#logout-form")).to_be_attached()


def use_session(page: Page, server: str, session: str) -> None:
    """Be logged in with a session made before the browser started (tests/admin/conftest.py)."""
    page.context.add_cookies([{"name": "sessionid", "value": session, "url": server}])
