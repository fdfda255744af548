"""The README's promise, end to end: ``ragd serve`` as a real process on its embedded
defaults, a Markdown upload over HTTP, the in-process worker, and a cited answer."""

from __future__ import annotations

import time

import httpx

from tests.helpers import LiveServer, wait_for_status

MARKDOWN = b"""# Lighthouse of Alexandria

The Lighthouse of Alexandria was built by the Ptolemaic Kingdom during the reign of
Ptolemy II Philadelphus, between 280 and 247 BC. It stood about 100 metres tall.

## Destruction

Earthquakes between 956 and 1323 AD badly damaged the lighthouse, and it became an
abandoned ruin.
"""


def test_upload_markdown_then_ask_cites_it(live_server: LiveServer) -> None:
    base = live_server.base_url
    with httpx.Client(base_url=base, timeout=30) as http:
        collection = http.post("/v1/collections", json={"name": "wonders"})
        assert collection.status_code == 201, collection.text
        cid = collection.json()["id"]
        upload = http.post(
            f"/v1/collections/{cid}/documents",
            files={"file": ("lighthouse.md", MARKDOWN, "text/markdown")},
        )
        assert upload.status_code == 202, upload.text
        location = upload.headers["location"]
        document = wait_for_status(http, location, "ready")
        assert document["chunk_count"] >= 1

        answer = http.post("/v1/ask", json={"question": "How tall was the lighthouse?"})
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert "100 metres" in body["answer"]
        cited = body["citations"]
        assert cited and cited[0]["document_id"] == document["id"]
        assert f"[{cited[0]['n']}]" in body["answer"]

        search = http.post("/v1/search", json={"query": "earthquakes damaged", "top_k": 3})
        assert search.json()["results"][0]["document_id"] == document["id"]


def test_server_logs_are_json_with_request_ids(live_server: LiveServer) -> None:
    with httpx.Client(base_url=live_server.base_url, timeout=10) as http:
        http.get("/v1/collections", headers={"x-request-id": "trace-e2e-1"})
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        if "trace-e2e-1" in live_server.log():
            break
        time.sleep(0.1)
    line = next(raw for raw in live_server.log().splitlines() if "trace-e2e-1" in raw)
    assert '"route": "/v1/collections"' in line
    assert '"status": 200' in line
