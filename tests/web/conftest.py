"""Browser fixtures: Debian's Chromium driven by Playwright against real ``ragd serve``.

One browser for the session, a fresh context (cookies, sessionStorage) per test. Every
page records its console errors, uncaught exceptions and every request it makes; at the
end of each test none may be an error and none may leave the server's origin. A test
that expects HTTP errors (a 401 on a wrong key) says which statuses, since Chromium logs
each failed response as a console error.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, sync_playwright

from tests.databases import unavailable
from tests.generation.fake_openai import FakeOpenAI
from tests.helpers import LiveServer, start_server, stop_server

CHROMIUM = Path(os.environ.get("RAGD_TEST_CHROMIUM", "/usr/bin/chromium"))
ADMIN_KEY = f"rgd_webadmin_{secrets.token_urlsafe(32)}"
_FAILED_RESOURCE = re.compile(r"the server responded with a status of (\d{3})")


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists() or shutil.which(str(CHROMIUM)) is None:
        unavailable(f"no Chromium at {CHROMIUM}: apt-get install chromium (make install-test)")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True)
        yield launched
        launched.close()


@pytest.fixture(scope="session")
def open_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """A server with no keys: loopback clients (the browser) are admin, as on a laptop.
    Uploads are capped at 1 MB so that a 413 is cheap to provoke."""
    process, server = start_server(tmp_path_factory.mktemp("web-open"), RAGD_MAX_UPLOAD_MB="1")
    try:
        yield server
    finally:
        stop_server(process)


@pytest.fixture(scope="session")
def llm() -> Iterator[FakeOpenAI]:
    """The keyed server's LLM: a real HTTP server speaking OpenAI's protocol."""
    with FakeOpenAI() as server:
        yield server


@pytest.fixture(scope="session")
def keyed_server(tmp_path_factory: pytest.TempPathFactory, llm: FakeOpenAI) -> Iterator[LiveServer]:
    """A server with an admin key, so every /v1 request needs a key, answering with an
    LLM (so the page is tried with both generators across the two servers)."""
    process, server = start_server(
        tmp_path_factory.mktemp("web-keyed"),
        RAGD_ADMIN_KEY=ADMIN_KEY,
        RAGD_LLM_BASE_URL=llm.base_url,
        RAGD_LLM_MODEL="fake-model",
        RAGD_LLM_MAX_RETRIES="0",
    )
    try:
        yield server
    finally:
        stop_server(process)


@pytest.fixture(scope="session")
def screenshots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where the journeys save views: ``$RAGD_UI_SCREENSHOTS`` or a session temp dir."""
    folder = os.environ.get("RAGD_UI_SCREENSHOTS")
    path = Path(folder) if folder else tmp_path_factory.mktemp("ui-screenshots")
    path.mkdir(parents=True, exist_ok=True)
    return path


@dataclass
class PageWatch:
    """What a page did that a test must answer for."""

    origin: str
    errors: list[str] = field(default_factory=list)
    foreign_requests: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)
    expected_statuses: set[int] = field(default_factory=set)

    def on_console(self, message: ConsoleMessage) -> None:
        if message.type == "error":
            self.errors.append(message.text)

    def on_request(self, url: str) -> None:
        if not (url.startswith(self.origin + "/") or url.startswith("data:")):
            self.foreign_requests.append(url)

    def expect_statuses(self, *statuses: int) -> None:
        """HTTP error statuses this test provokes on purpose (logged by Chromium)."""
        self.expected_statuses.update(statuses)

    def unexpected(self) -> list[str]:
        left = []
        for text in self.errors:
            failed = _FAILED_RESOURCE.search(text)
            if failed and int(failed.group(1)) in self.expected_statuses:
                continue
            left.append(text)
        return left


@dataclass
class Ui:
    page: Page
    server: LiveServer
    watch: PageWatch
    shots: Path

    def login(self, key: str) -> None:
        """Give the page a key through its key form (as a person pastes one)."""
        self.page.get_by_label("API key", exact=True).fill(key)
        self.page.get_by_role("button", name="Use key").click()

    def shot(self, name: str) -> Path:
        path = self.shots / f"ui-{name}.png"
        self.page.screenshot(path=str(path))
        return path


def _open(browser: Browser, server: LiveServer, shots: Path, **context_args: Any) -> Iterator[Ui]:
    options: dict[str, Any] = {"viewport": {"width": 1280, "height": 860}, **context_args}
    context = browser.new_context(**options)
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=server.base_url)
    page = context.new_page()
    page.set_default_timeout(15_000)
    watch = PageWatch(server.base_url)
    page.on("console", watch.on_console)
    page.on("pageerror", lambda error: watch.errors.append(f"pageerror: {error}"))
    page.on("request", lambda request: watch.on_request(request.url))

    def on_dialog(dialog: object) -> None:
        watch.dialogs.append(getattr(dialog, "message", "?"))
        getattr(dialog, "dismiss")()  # noqa: B009

    page.on("dialog", on_dialog)
    ui = Ui(page, server, watch, shots)
    try:
        yield ui
    finally:
        context.close()
    assert watch.unexpected() == [], f"console errors: {watch.unexpected()}"
    assert watch.foreign_requests == [], f"requests off the machine: {watch.foreign_requests}"
    assert watch.dialogs == [], f"the page opened dialogs (script ran?): {watch.dialogs}"


@pytest.fixture
def ui(browser: Browser, open_server: LiveServer, screenshots: Path) -> Iterator[Ui]:
    yield from _open(browser, open_server, screenshots)


@pytest.fixture
def keyed_ui(browser: Browser, keyed_server: LiveServer, screenshots: Path) -> Iterator[Ui]:
    yield from _open(browser, keyed_server, screenshots)
