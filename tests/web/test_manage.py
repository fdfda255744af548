"""Renaming and deleting, paging, sessions, and API errors as short messages in place."""

from __future__ import annotations

import httpx
from playwright.sync_api import expect

from tests.web.conftest import Ui
from tests.web.test_journeys import ask, create_collection, payload, tab

HUMAN_MESSAGES = """async () => {
    const { humanMessage } = await import('/ui/api.js');
    return {
        429: humanMessage(429, {detail: 'rate limit exceeded'}, '7'),
        503: humanMessage(503, {detail: 'the LLM is not reachable'}),
        0: humanMessage(0),
    };
}"""


def test_collection_rename_delete_and_errors(ui: Ui) -> None:
    ui.watch.expect_statuses(409, 413, 415, 422)
    page = ui.page
    page.goto(ui.server.base_url)
    name = create_collection(page, "mgmt")
    page.get_by_label("Paste text or Markdown").fill("# Note\n\nA short note about otters.")
    page.get_by_role("button", name="Add text").click()
    expect(page.locator('#documents-table tbody tr[data-status="ready"]')).to_have_count(
        1, timeout=60_000
    )
    page.get_by_label("Choose files").set_input_files(
        files=[
            payload("big.txt", "text/plain", b"x" * (1024 * 1024 + 10)),
            payload("blob.bin", "application/octet-stream", bytes(range(256)) * 8),
        ]
    )
    expect(page.locator('#uploads li[data-name="big.txt"]')).to_contain_text("Too large (413)")
    expect(page.locator('#uploads li[data-name="blob.bin"]')).to_contain_text(
        "Unsupported type (415)"
    )

    tab(page, "Collections")
    view = page.locator("#view-collections")
    view.get_by_label("Name", exact=True).fill(name)
    view.get_by_role("button", name="Create collection").click()
    expect(page.locator("#collections-error")).to_contain_text("Conflict (409)")
    expect(page.locator("#collections-error")).to_contain_text("already exists")

    row = page.locator(f'#collections-table tr[data-name="{name}"]')
    row.get_by_role("button", name="Rename").click()
    row.get_by_label(f"New name for {name}").fill("no spaces allowed")
    row.get_by_role("button", name="Save").click()
    expect(page.locator("#collections-error")).to_contain_text("Invalid input (422)")
    row.get_by_label(f"New name for {name}").fill(f"{name}-renamed")
    row.get_by_role("button", name="Save").click()
    renamed = page.locator(f'#collections-table tr[data-name="{name}-renamed"]')
    expect(renamed).to_be_visible()
    expect(page.locator("#collections-error")).to_be_hidden()

    renamed.get_by_role("button", name="Delete").click()
    dialog = page.locator("#confirm")
    expect(dialog).to_contain_text(f"“{name}-renamed” with its 1 document and 1 chunk")
    dialog.get_by_role("button", name="Cancel").click()
    expect(renamed).to_be_visible()
    renamed.get_by_role("button", name="Delete").click()
    dialog.get_by_role("button", name="Delete").click()
    expect(renamed).to_have_count(0)

    messages = page.evaluate(HUMAN_MESSAGES)
    assert messages["429"] == "Too many requests (429): rate limit exceeded Try again in 7 s."
    assert messages["503"] == "Service unavailable (503): the LLM is not reachable"
    assert "Could not reach the server" in messages["0"]


def test_document_paging_and_session_delete(ui: Ui) -> None:
    page = ui.page
    page.goto(ui.server.base_url)
    name = create_collection(page, "paging")
    cid = page.locator("#documents-collection").input_value()
    with httpx.Client(base_url=ui.server.base_url) as http:
        for n in range(23):
            text = f"# Page note {n}\n\nNote number {n} about paging."
            added = http.post(f"/v1/collections/{cid}/documents", json={"text": text})
            assert added.status_code == 202, added.text
    tab(page, "Collections")  # come back to see what arrived meanwhile
    tab(page, "Documents")
    rows = page.locator("#documents-table tbody tr")
    expect(rows).to_have_count(20)
    page.get_by_role("button", name="Next page").click()
    expect(rows).to_have_count(3)
    expect(page.get_by_role("button", name="Next page")).to_be_disabled()
    page.get_by_role("button", name="First page").click()
    expect(rows).to_have_count(20)
    expect(page.locator('#documents-table tbody tr[data-status="ready"]')).to_have_count(
        20, timeout=90_000
    )

    tab(page, "Chat")
    page.locator("#session-collections label", has_text=name).locator("input").check()
    page.get_by_role("button", name="New chat").click()
    ask(page, "What is note number 7 about?")
    current = page.locator("#session-list li.current")
    expect(current).to_contain_text("What is note number 7 about?")
    session_id = current.get_attribute("data-id")
    page.get_by_role("button", name="New chat").click()
    expect(page.locator("#chat-log li")).to_have_count(0)
    page.locator(f'#session-list li[data-id="{session_id}"] button.link').click()
    expect(page.locator("#chat-log li")).to_have_count(2)
    page.locator(f'#session-list li[data-id="{session_id}"]').get_by_role(
        "button", name="Delete chat"
    ).click()
    page.locator("#confirm").get_by_role("button", name="Delete").click()
    expect(page.locator(f'#session-list li[data-id="{session_id}"]')).to_have_count(0)
    expect(page.locator("#chat-log li")).to_have_count(0)
