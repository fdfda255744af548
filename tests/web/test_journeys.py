"""What a person does on the page, in a real Chromium against a real ``ragd serve``."""

from __future__ import annotations

import base64
import itertools
import re

import httpx
from playwright.sync_api import FilePayload, Page, expect

from tests.web.conftest import ADMIN_KEY, Ui
from tests.web.files import CORRUPT_PDF, MARKDOWN, pdf_bytes

READY_TIMEOUT_MS = 90_000
_names = itertools.count(1)


def tab(page: Page, name: str) -> None:
    page.locator("nav").get_by_role("button", name=name).click()


def create_collection(page: Page, prefix: str) -> str:
    """Create a collection on the collections view; the page opens its documents."""
    name = f"{prefix}-{next(_names)}"
    tab(page, "Collections")
    page.locator("#view-collections").get_by_label("Name", exact=True).fill(name)
    page.get_by_role("button", name="Create collection").click()
    expect(page.locator("#view-documents")).to_be_visible()
    expect(page.locator("#documents-collection option:checked")).to_have_text(name)
    return name


def payload(name: str, mime: str, data: bytes) -> FilePayload:
    return {"name": name, "mimeType": mime, "buffer": data}


def drop_files(page: Page, files: list[tuple[str, str, bytes]]) -> None:
    """Drop files on the drop zone as a person dragging them from a file manager would."""
    encoded = [[name, mime, base64.b64encode(data).decode()] for name, mime, data in files]
    transfer = page.evaluate_handle(
        """(files) => {
            const transfer = new DataTransfer();
            for (const [name, type, data] of files) {
                const bytes = Uint8Array.from(atob(data), (c) => c.charCodeAt(0));
                transfer.items.add(new File([bytes], name, { type }));
            }
            return transfer;
        }""",
        encoded,
    )
    page.dispatch_event("#drop-zone", "drop", {"dataTransfer": transfer})


def search(page: Page, query: str, collection: str) -> None:
    tab(page, "Search")
    page.get_by_label("Query").fill(query)
    page.locator("#view-search").get_by_label("Collection").select_option(label=collection)
    page.locator("#search-form").get_by_role("button", name="Search").click()


def ask(page: Page, question: str) -> None:
    page.get_by_label("Your question").fill(question)
    page.get_by_role("button", name="Ask").click()
    expect(page.locator('#chat-log li[data-streaming="done"]').last).to_be_visible()


def test_upload_search_and_cited_chat(ui: Ui) -> None:
    page = ui.page
    page.goto(ui.server.base_url)
    expect(page.locator("#status")).to_contain_text("database ok")
    name = create_collection(page, "handbook")
    drop_files(
        page,
        [
            ("tower-bridge.md", "text/markdown", MARKDOWN),
            ("zephyr.pdf", "application/pdf", pdf_bytes()),
        ],
    )
    uploads = page.locator("#uploads li")
    expect(uploads).to_have_count(2)
    expect(page.locator('#uploads li[data-status="ready"]')).to_have_count(
        2, timeout=READY_TIMEOUT_MS
    )
    rows = page.locator("#documents-table tbody tr")
    expect(rows.filter(has_text="Tower Bridge")).to_contain_text("ready")
    expect(rows.filter(has_text="Zephyr")).to_contain_text("ready")
    ui.shot("documents")

    tab(page, "Collections")
    row = page.locator("#collections-table tbody tr", has_text=name)
    expect(row.locator("td.ready")).to_have_text("2")
    expect(row.locator("td.failed")).to_have_text("0")
    ui.shot("collections")

    search(page, "bascule bridge", name)
    first = page.locator("#search-results li").first
    expect(first).to_contain_text("combined bascule and suspension bridge")
    expect(first.locator("mark", has_text=re.compile("^bascule$", re.I))).to_have_count(1)
    search(page, "quarterly revenue", name)
    hit = page.locator("#search-results li", has_text="Zephyr Corporation").first
    expect(hit).to_contain_text("42 million euros")
    expect(hit.locator("mark", has_text=re.compile("^revenue$", re.I))).to_have_count(1)
    ui.shot("search")

    tab(page, "Chat")
    page.locator("#session-collections label", has_text=name).locator("input").check()
    page.get_by_role("button", name="New chat").click()
    ask(page, "When was Tower Bridge built?")
    answer = page.locator("#chat-log li.assistant").last
    expect(answer).to_contain_text("1886")
    cite = answer.locator("button.cite", has_text="[1]").first
    cite.click()
    panel = page.locator("#citation-panel")
    expect(panel).to_be_visible()
    expect(panel).to_contain_text("1886 and 1894")
    chunk_id = cite.get_attribute("data-chunk-id")
    assert panel.get_attribute("data-chunk-id") == chunk_id
    document_id = panel.get_attribute("data-document-id")
    chunks = httpx.get(f"{ui.server.base_url}/v1/documents/{document_id}/chunks").json()
    cited = next(c for c in chunks["chunks"] if c["id"] == chunk_id)
    assert "1886" in cited["text"]
    ui.shot("chat")

    ask(page, "And when was it restored?")
    expect(page.locator("#chat-log li.assistant").last).to_contain_text("2008")
    expect(page.locator("#chat-log li")).to_have_count(4)
    session = page.locator("#session-list li.current")
    expect(session).to_contain_text("When was Tower Bridge built?")
    session_id = session.get_attribute("data-id")
    stored = httpx.get(f"{ui.server.base_url}/v1/chat/sessions/{session_id}/messages").json()
    assert [m["role"] for m in stored["messages"]] == ["user", "assistant"] * 2

    page.locator("#citation-open").click()
    expect(page.locator("#document-detail")).to_be_visible()
    expect(page.locator(f'#document-chunks li[data-chunk-id="{chunk_id}"]')).to_contain_text("1886")


def test_failed_document_shows_its_error(ui: Ui) -> None:
    page = ui.page
    page.goto(ui.server.base_url)
    create_collection(page, "broken")
    page.get_by_label("Choose files").set_input_files(
        files=[payload("broken.pdf", "application/pdf", CORRUPT_PDF)]
    )
    failed = page.locator('#uploads li[data-status="failed"]')
    expect(failed).to_have_count(1, timeout=READY_TIMEOUT_MS)
    expect(failed.locator(".error")).not_to_be_empty()
    row = page.locator('#documents-table tbody tr[data-status="failed"]')
    expect(row.locator(".doc-error")).to_contain_text("PDF", ignore_case=True)
    page.get_by_label("Status", exact=True).select_option("failed")
    expect(page.locator("#documents-table tbody tr")).to_have_count(1)
    row.get_by_role("button", name="Open").click()
    expect(page.locator("#document-error-text")).to_be_visible()
    ui.shot("failed")
    row.get_by_role("button", name="Delete").click()
    expect(page.locator("#confirm")).to_contain_text("“broken.pdf”")
    page.locator("#confirm").get_by_role("button", name="Delete").click()
    expect(page.locator("#documents-table tbody tr")).to_have_count(0)
    expect(page.locator("#documents-empty")).to_be_visible()


XSS_TITLE = "<img src=x onerror=alert(1)>"
XSS_BODY = (
    "# Xylophone <script>alert('heading')</script>\n\n"
    "The xylophone rule says <script>alert(2)</script> and <b>bold</b> "
    "<img src=x onerror=alert(3)> stay plain text."
)


def test_untrusted_text_is_shown_not_run(ui: Ui) -> None:
    page = ui.page
    page.goto(ui.server.base_url)
    name = create_collection(page, "xss")
    page.get_by_label("Title (optional)").fill(XSS_TITLE)
    page.get_by_label("Paste text or Markdown").fill(XSS_BODY)
    page.get_by_role("button", name="Add text").click()
    row = page.locator('#documents-table tbody tr[data-status="ready"]')
    expect(row).to_have_count(1, timeout=READY_TIMEOUT_MS)
    expect(row.locator("td.title")).to_have_text(XSS_TITLE)
    row.get_by_role("button", name="Open").click()
    expect(page.locator("#document-chunks")).to_contain_text("<script>alert(2)</script>")

    search(page, "xylophone rule", name)
    expect(page.locator("#search-results li").first).to_contain_text("<img src=x onerror=alert(3)>")
    expect(page.locator("#search-results li").first).to_contain_text(XSS_TITLE)

    tab(page, "Chat")
    page.locator("#session-collections label", has_text=name).locator("input").check()
    page.get_by_role("button", name="New chat").click()
    ask(page, "What does the xylophone rule say?")
    expect(page.locator("#chat-log li.assistant").last).to_contain_text("<script>alert(2)</script>")
    page.locator("#chat-log button.cite").first.click()
    expect(page.locator("#citation-panel")).to_contain_text(XSS_TITLE)
    # Nothing ran and nothing untrusted became an element.
    assert page.locator("main img, main script, main b").count() == 0
    ui.shot("xss")


def test_keys_flow(keyed_ui: Ui) -> None:
    ui = keyed_ui
    ui.watch.expect_statuses(401, 403)
    page = ui.page
    page.goto(ui.server.base_url)
    expect(page.locator("#key-view")).to_be_visible()
    expect(page.locator("#key-reason")).to_have_text("This server needs an API key.")
    expect(page.locator("#view-collections")).to_be_hidden()

    page.get_by_label("API key", exact=True).fill("rgd_wrongkey_notarealsecretatallnotatall")
    page.get_by_role("button", name="Use key").click()
    expect(page.locator("#key-error")).to_contain_text("401")
    expect(page.locator("#key-error")).to_contain_text("did not accept the API key")
    ui.shot("key-needed")

    page.get_by_label("API key", exact=True).fill(ADMIN_KEY)
    page.get_by_role("button", name="Use key").click()
    expect(page.locator("#key-view")).to_be_hidden()
    expect(page.locator("#view-collections")).to_be_visible()
    create_collection(page, "keyed")

    tab(page, "Keys")
    page.locator("#view-keys").get_by_label("Name", exact=True).fill("reader")
    page.get_by_label("Scope").select_option("read")
    page.get_by_role("button", name="Create key").click()
    secret = page.locator("#new-key-secret")
    expect(secret).to_have_text(re.compile(r"^rgd_[A-Za-z0-9]+_[A-Za-z0-9_-]{20,}$"))
    read_key = secret.text_content() or ""
    page.get_by_role("button", name="Copy").click()
    expect(page.locator("#new-key-copy")).to_have_text("Copied")
    assert page.evaluate("navigator.clipboard.readText()") == read_key
    expect(page.locator("#keys-table tbody tr", has_text="reader")).to_contain_text("read")
    ui.shot("keys")
    keys_view = page.locator("#view-keys")
    keys_view.get_by_label("Name", exact=True).fill("short-lived")
    keys_view.get_by_role("button", name="Create key").click()
    temporary = page.locator("#keys-table tbody tr", has_text="short-lived")
    temporary.get_by_role("button", name="Revoke").click()
    expect(page.locator("#confirm")).to_contain_text("“short-lived”")
    page.locator("#confirm").get_by_role("button", name="Revoke").click()
    expect(temporary).to_contain_text("revoked")
    expect(temporary.get_by_role("button", name="Revoke")).to_have_count(0)

    page.get_by_role("button", name="Forget key").click()
    expect(page.locator("#key-view")).to_be_visible()
    page.get_by_label("API key", exact=True).fill(read_key)
    page.get_by_role("button", name="Use key").click()
    # The page stays on the keys view, which this key may not open, and says why.
    expect(page.locator("#keys-error")).to_contain_text("admin scope")
    tab(page, "Collections")
    page.locator("#collections-table tbody tr").first.get_by_role("button", name="Open").click()
    page.get_by_label("Choose files").set_input_files(
        files=[payload("notes.md", "text/markdown", MARKDOWN)]
    )
    refused = page.locator('#uploads li[data-status="rejected"]')
    expect(refused).to_contain_text("403")
    expect(refused).to_contain_text("write scope")
    ui.shot("read-key-refused")
