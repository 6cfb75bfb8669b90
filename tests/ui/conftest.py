"""Playwright driving Debian's Chromium (/usr/bin/chromium, headless) against a live server.

One browser per module; each test gets its own context (fresh sessionStorage) whose every
request is recorded and whose requests to any other origin are aborted, so a page that
needed a CDN would break here as it would offline."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, Route, sync_playwright

from tests.support.server import ServerHandle

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
SCREENSHOTS = Path(__file__).resolve().parents[2] / "ui-screenshots"


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"Chromium is not installed at {CHROMIUM} (.ci/run installs Debian's)")
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True)
        yield browser
        browser.close()


@dataclass
class Tab:
    """A page with what it asked for: every request URL, every uncaught error and every
    Content-Security-Policy refusal the console reported."""

    page: Page
    origin: str
    requests: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)

    def off_origin(self) -> list[str]:
        # blob: and data: URLs are the page's own memory, not the network.
        return [
            url
            for url in self.requests
            if urlsplit(url).scheme in ("http", "https", "ws", "wss")
            and f"{urlsplit(url).scheme}://{urlsplit(url).netloc}" != self.origin
        ]


def open_tab(browser: Browser, origin: str) -> tuple[Tab, BrowserContext]:
    # UTC: the tests type datetime-local values as UTC wall time.
    context = browser.new_context(
        viewport={"width": 1280, "height": 800}, timezone_id="UTC", locale="en-US"
    )
    page = context.new_page()
    page.set_default_timeout(15_000)
    tab = Tab(page, origin)
    page.on("request", lambda request: tab.requests.append(request.url))
    page.on("pageerror", lambda exc: tab.errors.append(str(exc)))
    page.on(
        "console",
        lambda msg: tab.refused.append(msg.text) if "Content Security Policy" in msg.text else None,
    )

    def same_origin_only(route: Route) -> None:
        url = urlsplit(route.request.url)
        if url.scheme in ("http", "https") and f"{url.scheme}://{url.netloc}" != origin:
            route.abort()
        else:
            route.continue_()

    page.route("**/*", same_origin_only)
    return tab, context


@pytest.fixture
def tab(browser: Browser, server: ServerHandle) -> Iterator[Tab]:
    tab, context = open_tab(browser, server.base_url)
    yield tab
    context.close()
    assert tab.off_origin() == [], "the page asked another origin"
    assert tab.errors == [], f"uncaught errors in the page: {tab.errors}"
    assert tab.refused == [], f"the page tried what its CSP refuses: {tab.refused}"


def screenshot(page: Page, name: str, *, full_page: bool = False) -> Path:
    SCREENSHOTS.mkdir(exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=full_page)
    return path
