"""Every bad input gets a clear 4xx problem and leaves what is stored untouched."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

PROBLEM = "application/problem+json"


def new_collection(client: TestClient) -> str:
    collection_id: str = client.post("/v1/collections", json={"name": "docs"}).json()["id"]
    return collection_id


def assert_problem(response: Any, status: int) -> dict[str, object]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    body: dict[str, object] = response.json()
    assert {"type", "title", "status", "detail", "request_id"} <= set(body)
    assert body["status"] == status
    assert "Traceback" not in response.text
    return body


def test_empty_file_and_invalid_utf8_are_422(client: TestClient) -> None:
    cid = new_collection(client)
    url = f"/v1/collections/{cid}/documents"
    assert_problem(client.post(url, files={"file": ("e.txt", b"", "text/plain")}), 422)
    assert_problem(
        client.post(url, files={"file": ("b.txt", b"caf\xc3\x28 \xa0\xa1 broken", "text/plain")}),
        422,
    )
    assert_problem(client.post(url, files={"file": ("w.md", b"  \n\n \t ", "text/markdown")}), 422)
    assert_problem(client.post(url, json={"text": "   "}), 422)
    assert client.get(url).json()["documents"] == []


def test_unsupported_type_is_415(client: TestClient) -> None:
    cid = new_collection(client)
    png = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
    response = client.post(
        f"/v1/collections/{cid}/documents", files={"file": ("x.png", png, "image/png")}
    )
    assert_problem(response, 415)
    body = client.post(
        f"/v1/collections/{cid}/documents", content=b"text", headers={"content-type": "text/csv"}
    )
    assert_problem(body, 415)


def test_over_the_cap_is_413(client: TestClient) -> None:
    cid = new_collection(client)  # settings cap uploads at 1 MB
    big = b"a" * (3 * 1024 * 1024)
    response = client.post(
        f"/v1/collections/{cid}/documents", files={"file": ("big.txt", big, "text/plain")}
    )
    assert_problem(response, 413)
    just_over = b"word " * (1024 * 1024 // 5 + 10)
    response = client.post(
        f"/v1/collections/{cid}/documents", files={"file": ("over.txt", just_over, "text/plain")}
    )
    assert_problem(response, 413)

    def stream() -> object:
        for _ in range(40):
            yield b"b" * 100_000

    streamed = client.post(
        f"/v1/collections/{cid}/documents",
        content=stream(),  # type: ignore[arg-type]
        headers={"content-type": "application/json"},
    )
    assert_problem(streamed, 413)
    assert client.get(f"/v1/collections/{cid}/documents").json()["documents"] == []


def test_malformed_json_is_4xx(client: TestClient) -> None:
    cid = new_collection(client)
    headers = {"content-type": "application/json"}
    assert_problem(client.post("/v1/collections", content=b"{nope", headers=headers), 400)
    assert_problem(
        client.post(f"/v1/collections/{cid}/documents", content=b"{nope", headers=headers), 422
    )
    assert_problem(client.post(f"/v1/collections/{cid}/documents", json=[1, 2]), 422)
    assert_problem(
        client.post(f"/v1/collections/{cid}/documents", json={"text": "a", "url": "http://x"}),
        422,
    )
    assert_problem(client.post(f"/v1/collections/{cid}/documents", json={"text": 5}), 422)
    assert_problem(
        client.post(f"/v1/collections/{cid}/documents", json={"text": "a", "metadata": "x"}), 422
    )
    nested = {"text": "a", "metadata": {"k": {"nested": True}}}
    assert_problem(client.post(f"/v1/collections/{cid}/documents", json=nested), 422)
    huge_meta = {"text": "a", "metadata": {f"k{i}": "v" * 100 for i in range(200)}}
    assert_problem(client.post(f"/v1/collections/{cid}/documents", json=huge_meta), 422)
    assert_problem(client.post("/v1/search", content=b"[", headers=headers), 400)


def test_multipart_without_file_is_422(client: TestClient) -> None:
    cid = new_collection(client)
    response = client.post(f"/v1/collections/{cid}/documents", files={"title": (None, "no file")})
    assert_problem(response, 422)
    bad_meta = client.post(
        f"/v1/collections/{cid}/documents",
        files={"file": ("a.txt", b"hello", "text/plain")},
        data={"metadata": "{not json"},
    )
    assert_problem(bad_meta, 422)


def test_path_traversal_filename_is_neutralised(client: TestClient) -> None:
    cid = new_collection(client)
    response = client.post(
        f"/v1/collections/{cid}/documents",
        files={"file": ("../../etc/passwd.txt", b"root:x:0:0", "text/plain")},
    )
    assert response.status_code == 202
    assert response.json()["source"] == "passwd.txt"


def test_unknown_ids_are_404(client: TestClient) -> None:
    assert_problem(client.get("/v1/documents/doc_nope"), 404)
    assert_problem(client.delete("/v1/documents/doc_nope"), 404)
    assert_problem(client.get("/v1/documents/doc_nope/chunks"), 404)
    assert_problem(client.post("/v1/collections/col_x/documents", json={"text": "a"}), 404)
    assert_problem(client.get("/v1/nothing-here"), 404)


def test_bad_queries_are_422(client: TestClient) -> None:
    for body in [
        {"query": ""},
        {"query": "x" * 10_000},
        {"query": "ok", "top_k": 0},
        {"query": "ok", "top_k": 101},
        {"query": "ok", "mode": "fuzzy"},
        {"query": "ok", "filters": {"a": [1]}},
        {},
    ]:
        assert_problem(client.post("/v1/search", json=body), 422)
    assert_problem(client.post("/v1/search", json={"query": "   "}), 422)
    assert_problem(client.post("/v1/ask", json={"question": ""}), 422)
    assert_problem(client.post("/v1/ask", json={"question": "y" * 10_000}), 422)


def test_ssrf_urls_are_422(client: TestClient) -> None:
    cid = new_collection(client)
    for url in [
        "http://127.0.0.1/admin",
        "http://localhost:8000/",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::1]/",
        "http://10.0.0.5/",
        "http://2130706433/",
        "file:///etc/passwd",
        "gopher://example.com/",
        "http://user:pass@example.com/",
    ]:
        body = assert_problem(
            client.post(f"/v1/collections/{cid}/documents", json={"url": url}), 422
        )
        assert ":pass@" not in str(body["detail"])
    assert client.get(f"/v1/collections/{cid}/documents").json()["documents"] == []


def test_request_id_is_echoed_or_generated(client: TestClient) -> None:
    echoed = client.get("/livez", headers={"x-request-id": "abc-123"})
    assert echoed.headers["x-request-id"] == "abc-123"
    assert float(echoed.headers["x-process-time"]) >= 0
    unsafe = client.get("/livez", headers={"x-request-id": "bad id\twith spaces"})
    assert unsafe.headers["x-request-id"] != "bad id\twith spaces"
    assert len(unsafe.headers["x-request-id"]) == 32


@pytest.mark.parametrize("number", ["NaN", "Infinity", "-Infinity"])
def test_non_finite_numbers_are_422_and_store_nothing(client: TestClient, number: str) -> None:
    """Python's JSON reader takes NaN and Infinity; JSON, JSONB and the filters do not."""
    cid = client.post("/v1/collections", json={"name": "finite"}).json()["id"]
    headers = {"content-type": "application/json"}
    created = client.post(
        f"/v1/collections/{cid}/documents",
        content=f'{{"text": "hello", "metadata": {{"k": {number}}}}}',
        headers=headers,
    )
    assert created.status_code == 422, created.text
    assert created.headers["content-type"].startswith("application/problem+json")
    assert "finite" in created.json()["detail"]
    assert client.get(f"/v1/collections/{cid}/documents").json()["documents"] == []
    searched = client.post(
        "/v1/search", content=f'{{"query": "x", "filters": {{"k": {number}}}}}', headers=headers
    )
    assert searched.status_code == 422, searched.text
    assert "finite" in searched.json()["detail"]


def test_nul_characters_in_json_are_422_everywhere(client: TestClient) -> None:
    """U+0000 cannot be stored by PostgreSQL; it is refused on every database alike."""
    cid = client.post("/v1/collections", json={"name": "nul"}).json()["id"]
    cases = [
        (f"/v1/collections/{cid}/documents", {"text": "hello", "metadata": {"k": "a\u0000"}}),
        (f"/v1/collections/{cid}/documents", {"text": "hel\u0000lo", "title": "t"}),
        ("/v1/search", {"query": "x", "filters": {"k": "a\u0000"}}),
        ("/v1/collections", {"name": "other", "description": "d\u0000"}),
        ("/v1/chat/sessions", {"title": "t\u0000"}),
    ]
    for path, body in cases:
        body_problem = assert_problem(client.post(path, json=body), 422)
        assert "NUL" in str(body_problem["detail"])
    assert client.get(f"/v1/collections/{cid}/documents").json()["documents"] == []
    assert [c["name"] for c in client.get("/v1/collections").json()["collections"]] == ["nul"]
    # The text "\u0000" (an escaped backslash, then u0000) is ordinary text.
    fine = client.post("/v1/collections", json={"name": "fine", "description": "\\u0000"})
    assert fine.status_code == 201, fine.text


def test_lone_surrogates_in_json_are_422_everywhere(client: TestClient) -> None:
    """JSON may escape half a UTF-16 pair (``\\ud800``): Python holds it, no database can
    store it. Metadata values used to reach the database and answer 500."""
    cid = client.post("/v1/collections", json={"name": "surrogates"}).json()["id"]
    headers = {"content-type": "application/json"}
    cases = [
        (f"/v1/collections/{cid}/documents", b'{"text": "hello", "metadata": {"k": "a\\ud800"}}'),
        (f"/v1/collections/{cid}/documents", b'{"text": "hel\\udfffo"}'),
        ("/v1/search", b'{"query": "x", "filters": {"k": "a\\ud800"}}'),
        ("/v1/search", b'{"query": "x", "filters": {"\\ud800": "a"}}'),
        ("/v1/collections", b'{"name": "a\\ud800"}'),
    ]
    for path, body in cases:
        assert_problem(client.post(path, content=body, headers=headers), 422)
    upload = client.post(
        f"/v1/collections/{cid}/documents",
        files={"file": ("a.md", b"# A\n\ntext", "text/markdown")},
        data={"metadata": '{"k": "\\ud800"}'},
    )
    assert_problem(upload, 422)
    assert client.get(f"/v1/collections/{cid}/documents").json()["documents"] == []
    # A proper pair is one character, stored like any other.
    paired = client.post(
        f"/v1/collections/{cid}/documents",
        content=b'{"text": "emoji \\ud83d\\ude00", "metadata": {"k": "\\ud83d\\ude00"}}',
        headers=headers,
    )
    assert paired.status_code == 202, paired.text
    assert paired.json()["metadata"] == {"k": "\U0001f600"}
