"""Readable at 375 px and on a desktop, light and dark, labelled and usable by keyboard."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, expect

from tests.helpers import LiveServer
from tests.web.conftest import Ui, _open

VIEWS = ("collections", "documents", "search", "chat", "keys")

UNLABELLED = """() => [...document.querySelectorAll('input, select, textarea, button')]
    .filter((c) => !(c.labels && c.labels.length) && !c.getAttribute('aria-label')
                   && !(c.tagName === 'BUTTON' && c.textContent.trim()))
    .map((c) => c.outerHTML)"""


@pytest.fixture
def phone_dark_ui(browser: Browser, open_server: LiveServer, screenshots: Path) -> Iterator[Ui]:
    yield from _open(
        browser,
        open_server,
        screenshots,
        viewport={"width": 375, "height": 760},
        color_scheme="dark",
        is_mobile=True,
        has_touch=True,
    )


def test_every_control_is_labelled(ui: Ui) -> None:
    ui.page.goto(f"{ui.server.base_url}/#search")
    expect(ui.page.locator("#status")).to_contain_text("database ok")
    ui.page.locator("#filter-add").click()  # the generated filter row too
    assert ui.page.evaluate(UNLABELLED) == []


def test_keyboard_reaches_and_switches_views(ui: Ui) -> None:
    page = ui.page
    page.goto(ui.server.base_url)
    expect(page.locator("#status")).to_contain_text("database ok")
    page.keyboard.press("Tab")  # first tab stop: the Collections tab
    for _ in range(2):
        page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.dataset.view") == "search"
    page.keyboard.press("Enter")
    expect(page.locator("#view-search")).to_be_visible()
    expect(page.locator('nav [aria-current="page"]')).to_have_text("Search")
    page.get_by_label("Query").focus()
    page.keyboard.type("bridge")
    page.keyboard.press("Enter")  # submits the search form
    expect(page.locator("#search-summary")).not_to_have_text("")


def test_phone_width_and_dark_scheme(phone_dark_ui: Ui) -> None:
    ui = phone_dark_ui
    page = ui.page
    page.goto(ui.server.base_url)
    expect(page.locator("#status")).to_contain_text("database ok")
    background = page.evaluate("getComputedStyle(document.body).backgroundColor")
    assert background == "rgb(17, 20, 24)"  # the dark palette
    for view in VIEWS:
        page.locator("nav").get_by_role("button", name=view.capitalize()).click()
        expect(page.locator(f"#view-{view}")).to_be_visible()
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 375, f"{view} is {width}px wide at 375px"
    page.locator("nav").get_by_role("button", name="Collections").click()
    ui.shot("phone-dark")


def test_light_scheme_by_default(ui: Ui) -> None:
    ui.page.goto(ui.server.base_url)
    assert ui.page.evaluate("getComputedStyle(document.body).backgroundColor") == (
        "rgb(255, 255, 255)"
    )
