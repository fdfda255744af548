from __future__ import annotations

import io
import json
from collections.abc import Callable

from fastapi.testclient import TestClient
from reportlab.pdfgen import canvas

Drain = Callable[[], int]

MARKDOWN = """# Tower Bridge

Tower Bridge is a combined bascule and suspension bridge in London, built between
1886 and 1894. It crosses the River Thames close to the Tower of London.

## Restoration

The bridge was restored in 2008 and repainted blue and white.
"""


def new_collection(client: TestClient, name: str = "docs") -> str:
    collection_id: str = client.post("/v1/collections", json={"name": name}).json()["id"]
    return collection_id


def pdf_bytes(text: str) -> bytes:
    buffer = io.BytesIO()
    page = canvas.Canvas(buffer)
    page.setTitle("Quarterly Report")
    page.drawString(72, 720, text)
    page.save()
    return buffer.getvalue()


def test_text_document_lifecycle(client: TestClient, drain: Drain) -> None:
    cid = new_collection(client)
    response = client.post(
        f"/v1/collections/{cid}/documents",
        json={"text": MARKDOWN, "metadata": {"lang": "en", "year": 1894}},
    )
    assert response.status_code == 202, response.text
    document = response.json()
    assert response.headers["location"] == f"/v1/documents/{document['id']}"
    assert document["status"] == "queued"
    assert document["content_hash"] is None  # the text is parsed by the worker
    drain()
    ready = client.get(f"/v1/documents/{document['id']}").json()
    assert ready["status"] == "ready"
    assert ready["title"] == "Tower Bridge"
    assert len(ready["content_hash"]) == 64
    assert ready["chunk_count"] >= 1
    assert ready["ready_at"] is not None
    chunks = client.get(f"/v1/documents/{document['id']}/chunks").json()["chunks"]
    assert len(chunks) == ready["chunk_count"]
    assert any(c["heading_path"][-1:] == ["Restoration"] for c in chunks)
    assert client.delete(f"/v1/documents/{document['id']}").status_code == 204
    assert client.get(f"/v1/documents/{document['id']}").status_code == 404
    assert client.get(f"/v1/documents/{document['id']}/chunks").status_code == 404


def test_duplicate_content_returns_existing_with_200(client: TestClient) -> None:
    cid = new_collection(client)
    first = client.post(f"/v1/collections/{cid}/documents", json={"text": MARKDOWN})
    # The same text again. Equal only after normalization (CRLF, trailing spaces) is
    # found by the worker, like for uploads: tests/api/test_ingest_bounds_api.py.
    again = client.post(f"/v1/collections/{cid}/documents", json={"text": MARKDOWN})
    assert again.status_code == 200
    assert again.json()["id"] == first.json()["id"]
    listed = client.get(f"/v1/collections/{cid}/documents").json()["documents"]
    assert len(listed) == 1


def test_multipart_markdown_upload(client: TestClient, drain: Drain) -> None:
    cid = new_collection(client)
    response = client.post(
        f"/v1/collections/{cid}/documents",
        files={"file": ("bridge.md", MARKDOWN.encode(), "text/markdown")},
        data={"title": "Bridges", "metadata": json.dumps({"team": "docs"})},
    )
    assert response.status_code == 202, response.text
    body = response.json()
    assert body["title"] == "Bridges"
    assert body["source"] == "bridge.md"
    assert body["mime_type"] == "text/markdown"
    assert body["metadata"] == {"team": "docs"}
    drain()
    assert client.get(f"/v1/documents/{body['id']}").json()["status"] == "ready"
    same = client.post(
        f"/v1/collections/{cid}/documents",
        files={"file": ("copy.md", MARKDOWN.encode(), "text/markdown")},
    )
    assert same.status_code == 200
    assert same.json()["id"] == body["id"]


def test_pdf_upload_and_corrupt_pdf(client: TestClient, drain: Drain) -> None:
    cid = new_collection(client)
    good = client.post(
        f"/v1/collections/{cid}/documents",
        files={"file": ("report.pdf", pdf_bytes("Revenue grew nine percent."), "application/pdf")},
    )
    bad = client.post(
        f"/v1/collections/{cid}/documents",
        files={"file": ("broken.pdf", b"%PDF-1.4\n garbage that is not a pdf", "application/pdf")},
    )
    assert good.status_code == 202
    assert bad.status_code == 202
    drain()
    good_doc = client.get(f"/v1/documents/{good.json()['id']}").json()
    bad_doc = client.get(f"/v1/documents/{bad.json()['id']}").json()
    assert good_doc["status"] == "ready"
    assert good_doc["title"] == "Quarterly Report"
    assert bad_doc["status"] == "failed"
    assert "PDF" in bad_doc["error"]
    assert "Traceback" not in bad_doc["error"]


def test_list_pagination_and_status_filter(client: TestClient, drain: Drain) -> None:
    cid = new_collection(client)
    ids = [
        client.post(f"/v1/collections/{cid}/documents", json={"text": f"note number {i}"}).json()[
            "id"
        ]
        for i in range(7)
    ]
    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, str | int] = {"limit": 3}
        if cursor:
            params["cursor"] = cursor
        page = client.get(f"/v1/collections/{cid}/documents", params=params).json()
        seen += [d["id"] for d in page["documents"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert sorted(seen) == sorted(ids)
    assert len(seen) == len(set(seen))
    queued = client.get(f"/v1/collections/{cid}/documents", params={"status": "queued"})
    assert len(queued.json()["documents"]) == 7
    drain()
    ready = client.get(f"/v1/collections/{cid}/documents", params={"status": "ready"})
    assert len(ready.json()["documents"]) == 7
    bad_status = client.get(f"/v1/collections/{cid}/documents", params={"status": "done"})
    assert bad_status.status_code == 422
    bad_cursor = client.get(f"/v1/collections/{cid}/documents", params={"cursor": "zzz"})
    assert bad_cursor.status_code == 422
    bad_limit = client.get(f"/v1/collections/{cid}/documents", params={"limit": 0})
    assert bad_limit.status_code == 422
