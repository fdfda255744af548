"""Chat with an LLM behind ragd: the answer streams into the page as it is generated."""

from __future__ import annotations

import httpx
from playwright.sync_api import expect

from tests.generation.fake_openai import FakeOpenAI
from tests.helpers import wait_for_status
from tests.web.conftest import ADMIN_KEY, Ui
from tests.web.files import MARKDOWN

ANSWER = "Tower Bridge was built between **1886** and 1894 [1]. <b>It</b> opened in 1894 [1]."

# Counts how many different texts the streaming answer showed before it was complete.
WATCH_STREAM = """() => {
    window.__partials = new Set();
    new MutationObserver(() => {
        const answer = document.querySelector('#chat-log li.assistant[data-streaming="true"]');
        if (answer) window.__partials.add(answer.querySelector('.content').textContent);
    }).observe(document.querySelector('#chat-log'),
               { childList: true, subtree: true, characterData: true, attributes: true });
}"""


def test_llm_answer_streams_with_citations(keyed_ui: Ui, llm: FakeOpenAI) -> None:
    ui = keyed_ui
    ui.watch.expect_statuses(401)  # the first load, before the key is given
    admin = {"Authorization": f"Bearer {ADMIN_KEY}"}
    with httpx.Client(base_url=ui.server.base_url, headers=admin, timeout=30) as http:
        cid = http.post("/v1/collections", json={"name": "llm-bridges"}).json()["id"]
        added = http.post(f"/v1/collections/{cid}/documents", json={"text": MARKDOWN.decode()})
        wait_for_status(http, added.headers["location"], "ready")
    llm.reply(ANSWER, delta_delay_s=0.05)

    page = ui.page
    page.goto(f"{ui.server.base_url}/#chat")
    ui.login(ADMIN_KEY)
    expect(page.locator("#status")).to_contain_text("llm ok")
    page.locator("#session-collections label", has_text="llm-bridges").locator("input").check()
    page.evaluate(WATCH_STREAM)
    page.get_by_label("Your question").fill("When was Tower Bridge built?")
    page.get_by_role("button", name="Ask").click()
    answer = page.locator('#chat-log li.assistant[data-streaming="done"]')
    # Markdown and HTML from the LLM are shown as the characters it sent.
    expect(answer).to_contain_text("between **1886** and 1894 [1]. <b>It</b> opened")
    assert page.evaluate("window.__partials.size") >= 3, "the answer did not arrive in pieces"
    assert llm.chat_requests[-1].json["stream"] is True
    answer.locator("button.cite").first.click()
    expect(page.locator("#citation-panel")).to_contain_text("1886 and 1894")


def test_llm_failure_mid_stream_is_a_message(keyed_ui: Ui, llm: FakeOpenAI) -> None:
    ui = keyed_ui
    ui.watch.expect_statuses(401)
    admin = {"Authorization": f"Bearer {ADMIN_KEY}"}
    with httpx.Client(base_url=ui.server.base_url, headers=admin, timeout=30) as http:
        cid = http.post("/v1/collections", json={"name": "llm-failing"}).json()["id"]
        added = http.post(f"/v1/collections/{cid}/documents", json={"text": MARKDOWN.decode()})
        wait_for_status(http, added.headers["location"], "ready")
    llm.fail(500, message="the model is overloaded")
    page = ui.page
    page.goto(f"{ui.server.base_url}/#chat")
    ui.login(ADMIN_KEY)
    page.locator("#session-collections label", has_text="llm-failing").locator("input").check()
    page.get_by_label("Your question").fill("When was Tower Bridge built?")
    page.get_by_role("button", name="Ask").click()
    expect(page.locator("#chat-error")).to_be_visible()
    expect(page.locator("#chat-error")).to_contain_text("Service unavailable (503)")
    expect(page.locator("#chat-error")).not_to_contain_text("{")
    expect(page.get_by_role("button", name="Ask")).to_be_enabled()
