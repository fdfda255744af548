"""``POST /v1/collections/{id}/documents:batch``: files and NDJSON lines, one result per
item, bad items rejected alone, the batch's own bounds refused before anything is
written; on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from ragd.api.app import create_app
from ragd.config import load_settings
from ragd.container import Container
from ragd.embedding import LocalEmbedder
from tests.helpers import LOOPBACK_CLIENT

Drain = Callable[[], int]
MakeKey = Callable[..., str]
Files = list[tuple[str, tuple[str, bytes, str]]]

BRIDGE = b"# Tower Bridge\n\nTower Bridge crosses the River Thames in London.\n"
HARBOUR = b"<html><head><title>Harbour</title></head><body><p>The harbour lights.</p></body>"
PNG = b"\x89PNG\r\n\x1a\n" + b"\0" * 64
PUBLIC_URL = "http://93.184.215.14/page"  # an address literal: no DNS needed to accept it


def batch_path(cid: str) -> str:
    return f"/v1/collections/{cid}/documents:batch"


def new_collection(client: TestClient, name: str = "docs", headers: Any = None) -> str:
    response = client.post("/v1/collections", json={"name": name}, headers=headers)
    assert response.status_code == 201, response.text
    cid: str = response.json()["id"]
    return cid


def ndjson(*lines: Any) -> bytes:
    """One line per item: dicts are dumped, bytes and str go as they are."""
    out = []
    for line in lines:
        if isinstance(line, dict):
            out.append(json.dumps(line).encode())
        elif isinstance(line, str):
            out.append(line.encode())
        else:
            out.append(line)
    return b"\n".join(out) + b"\n"


def post_ndjson(client: TestClient, cid: str, body: bytes, headers: Any = None) -> Any:
    return client.post(
        batch_path(cid),
        content=body,
        headers={"content-type": "application/x-ndjson", **(headers or {})},
    )


def documents_in(client: TestClient, cid: str) -> list[dict[str, Any]]:
    listed: list[dict[str, Any]] = client.get(f"/v1/collections/{cid}/documents").json()[
        "documents"
    ]
    return listed


@pytest.fixture
def make_client(
    tmp_path: Path, database_url: str, embedder: LocalEmbedder
) -> Iterator[Callable[..., TestClient]]:
    """A loopback client on this test's database with settings of the test's own."""
    with ExitStack() as stack:

        def make(**overrides: Any) -> TestClient:
            settings = load_settings(
                **{
                    "data_dir": tmp_path,
                    "database_url": database_url,
                    "inprocess_worker": False,
                    "max_upload_mb": 1,
                    "log_format": "json",
                    **overrides,
                }
            )
            container = Container(settings, embedder=embedder)
            stack.callback(container.close)
            app = create_app(settings, container=container)
            return stack.enter_context(TestClient(app, client=LOOPBACK_CLIENT))

        yield make


def test_files_each_get_a_result_and_bad_ones_are_rejected_alone(
    client: TestClient, drain: Drain
) -> None:
    cid = new_collection(client)
    files: Files = [
        ("file", ("bridge.md", BRIDGE, "text/markdown")),
        ("file", ("again.md", BRIDGE, "text/markdown")),  # the same bytes: a duplicate
        ("file", ("picture.png", PNG, "image/png")),  # no parser reads it
        ("file", ("empty.txt", b"", "text/plain")),
        ("file", ("harbour.html", HARBOUR, "text/html")),
    ]
    response = client.post(
        batch_path(cid), files=files, data={"metadata": json.dumps({"team": "docs"})}
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["created"], body["duplicates"], body["rejected"]) == (2, 1, 2)
    items = body["items"]
    assert [i["index"] for i in items] == [0, 1, 2, 3, 4]
    assert [i["status"] for i in items] == [
        "created",
        "duplicate",
        "rejected",
        "rejected",
        "created",
    ]
    assert [i["filename"] for i in items] == [name for _, (name, _, _) in files]
    assert items[1]["document"]["id"] == items[0]["document"]["id"]
    assert items[0]["document"]["metadata"] == {"team": "docs"}
    assert items[0]["document"]["status"] == "queued" and items[0]["problem"] is None
    assert items[2]["document"] is None
    assert items[2]["problem"]["status"] == 415
    assert "PNG" in items[2]["problem"]["detail"]
    assert items[3]["problem"]["status"] == 422
    assert items[3]["problem"]["title"] == "Unprocessable Content"
    assert items[3]["problem"]["type"].startswith("https://")
    # Only what was accepted is stored, and it is ingested like a single upload.
    listed = documents_in(client, cid)
    assert {d["source"] for d in listed} == {"bridge.md", "harbour.html"}
    drain()
    ready = client.get(f"/v1/documents/{items[4]['document']['id']}").json()
    assert ready["status"] == "ready" and ready["title"] == "Harbour"
    found = client.post("/v1/search", json={"query": "Tower Bridge Thames"}).json()["results"]
    assert found and found[0]["document_id"] == items[0]["document"]["id"]


def test_a_file_already_in_the_collection_is_a_duplicate(client: TestClient) -> None:
    cid = new_collection(client)
    first = client.post(
        f"/v1/collections/{cid}/documents", files={"file": ("b.md", BRIDGE, "text/markdown")}
    )
    assert first.status_code == 202
    response = client.post(batch_path(cid), files=[("file", ("b.md", BRIDGE, "text/markdown"))])
    assert response.status_code == 200
    item = response.json()["items"][0]
    assert item["status"] == "duplicate"
    assert item["document"]["id"] == first.json()["id"]


def test_a_file_over_the_upload_cap_is_rejected_alone(client: TestClient) -> None:
    cid = new_collection(client)
    big = b"word " * (1024 * 1024 // 5 + 100)  # just over RAGD_MAX_UPLOAD_MB=1
    response = client.post(
        batch_path(cid),
        files=[
            ("file", ("big.txt", big, "text/plain")),
            ("file", ("bridge.md", BRIDGE, "text/markdown")),
        ],
    )
    assert response.status_code == 200, response.text
    items = response.json()["items"]
    assert items[0]["status"] == "rejected" and items[0]["problem"]["status"] == 413
    assert items[1]["status"] == "created"
    assert len(documents_in(client, cid)) == 1


def test_ndjson_lines_each_get_a_result(client: TestClient) -> None:
    cid = new_collection(client)
    deep: Any = "leaf"
    for _ in range(40):
        deep = [deep]
    body = ndjson(
        {"text": "# Leave\n\nEveryone gets 25 days.", "title": "Leave", "metadata": {"hr": 1}},
        {"url": PUBLIC_URL, "title": "A page"},
        "{not json",
        "",  # blank lines are skipped and are not items
        {"text": "a", "url": PUBLIC_URL},
        {"text": ""},
        {"text": "deep", "metadata": {"k": deep}},
        '{"text": "nul \\u0000 here"}',
        {"url": "http://127.0.0.1:8000/admin"},
        b'{"text": "\xff\xfe broken"}',
        {"text": "# Leave\n\nEveryone gets 25 days.", "title": "Leave", "metadata": {"hr": 1}},
        {"text": "x", "colour": "blue"},
    )
    response = post_ndjson(client, cid, body)
    assert response.status_code == 200, response.text
    result = response.json()
    statuses = [(i["index"], i["status"]) for i in result["items"]]
    assert statuses == [
        (0, "created"),
        (1, "created"),
        (2, "rejected"),
        (3, "rejected"),
        (4, "rejected"),
        (5, "rejected"),
        (6, "rejected"),
        (7, "rejected"),
        (8, "rejected"),
        (9, "duplicate"),
        (10, "rejected"),
    ]
    assert (result["created"], result["duplicates"], result["rejected"]) == (2, 1, 8)
    items = result["items"]
    assert items[0]["document"]["title"] == "Leave"
    assert items[0]["document"]["metadata"] == {"hr": 1}
    assert items[0]["filename"] is None
    assert items[1]["document"]["source"] == PUBLIC_URL
    assert items[9]["document"]["id"] == items[0]["document"]["id"]
    problems = {i["index"]: i["problem"] for i in items if i["problem"]}
    assert all(p["status"] == 422 for p in problems.values())
    assert "not valid JSON" in problems[2]["detail"]
    assert "exactly one of 'text' or 'url'" in problems[3]["detail"]
    assert "nested deeper than 32" in problems[5]["detail"]
    assert "NUL" in problems[6]["detail"]
    assert "colour" in problems[10]["detail"]
    assert len(documents_in(client, cid)) == 2


def test_over_the_document_count_is_refused_whole(make_client: Callable[..., TestClient]) -> None:
    client = make_client(max_batch_documents=3)
    cid = new_collection(client)
    at_bound = ndjson(*({"text": f"note {i}"} for i in range(3)))
    assert post_ndjson(client, cid, at_bound).json()["created"] == 3
    over = post_ndjson(client, cid, ndjson(*({"text": f"other {i}"} for i in range(4))))
    assert over.status_code == 413
    assert over.headers["content-type"] == "application/problem+json"
    assert "at most 3" in over.json()["detail"]
    files = [
        ("file", (f"f{i}.md", f"# F{i}\n\nfile {i}".encode(), "text/markdown")) for i in range(4)
    ]
    refused = client.post(batch_path(cid), files=files)
    assert refused.status_code == 413
    assert "at most 3" in refused.json()["detail"]
    assert len(documents_in(client, cid)) == 3  # nothing of either refused batch
    # The OpenAPI document states the configured bound.
    schema = client.get("/openapi.json").json()["paths"][
        "/v1/collections/{collection_id}/documents:batch"
    ]["post"]["requestBody"]["content"]["multipart/form-data"]["schema"]
    assert schema["properties"]["file"]["maxItems"] == 3


def test_over_the_batch_body_cap_is_refused_whole(make_client: Callable[..., TestClient]) -> None:
    client = make_client(max_batch_mb=0.5)
    cid = new_collection(client)
    # Each file is within the upload cap (1 MB); together they pass 0.5 MB + framing.
    part = b"word " * (400 * 1024 // 5)
    files: Files = [("file", (f"f{i}.txt", part + bytes([65 + i]), "text/plain")) for i in range(5)]
    refused = client.post(batch_path(cid), files=files)
    assert refused.status_code == 413
    assert refused.headers["content-type"] == "application/problem+json"
    lines = ndjson(*({"text": "word " * (400 * 1024 // 5) + str(i)} for i in range(5)))
    assert post_ndjson(client, cid, lines).status_code == 413
    assert documents_in(client, cid) == []
    # Single uploads keep their own cap.
    single = client.post(
        f"/v1/collections/{cid}/documents", files={"file": ("f.txt", part, "text/plain")}
    )
    assert single.status_code == 202


@pytest.mark.parametrize(
    ("content_type", "body", "status", "detail"),
    [
        ("application/json", b'{"text": "a"}', 415, "application/x-ndjson"),
        ("text/plain", b"hello", 415, "multipart/form-data"),
        ("application/x-ndjson", b"", 422, "no documents"),
        ("application/x-ndjson", b"\n\n  \n", 422, "no documents"),
    ],
)
def test_bodies_refused_whole(
    client: TestClient, content_type: str, body: bytes, status: int, detail: str
) -> None:
    cid = new_collection(client)
    response = client.post(batch_path(cid), content=body, headers={"content-type": content_type})
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert detail in response.json()["detail"]
    assert documents_in(client, cid) == []


def test_multipart_refused_whole(client: TestClient) -> None:
    cid = new_collection(client)
    no_files = client.post(batch_path(cid), data={"metadata": "{}"}, files=[("x", ("a", b"b"))])
    assert no_files.status_code == 422
    assert "no documents" in no_files.json()["detail"]
    bad_metadata = client.post(
        batch_path(cid),
        files=[("file", ("b.md", BRIDGE, "text/markdown"))],
        data={"metadata": "[1, 2]"},
    )
    assert bad_metadata.status_code == 422
    assert "metadata" in bad_metadata.json()["detail"]
    # A 'file' field that is not a file is that item's problem, not the batch's.
    mixed = client.post(
        batch_path(cid),
        files=[("file", ("b.md", BRIDGE, "text/markdown"))],
        data={"file": "just text"},
    )
    assert mixed.status_code == 200, mixed.text
    assert sorted(i["status"] for i in mixed.json()["items"]) == ["created", "rejected"]
    assert len(documents_in(client, cid)) == 1


def test_missing_collection_is_404_and_writes_nothing(client: TestClient) -> None:
    response = post_ndjson(client, "col_000000000000000000000000", ndjson({"text": "a"}))
    assert response.status_code == 404


def test_scopes_and_other_tenants(client: TestClient, make_key: MakeKey) -> None:
    mine = new_collection(client, "mine")
    theirs = new_collection(client, "theirs")
    reader = {"X-API-Key": make_key("read")}
    writer = {"X-API-Key": make_key("write", collections=[mine])}
    body = ndjson({"text": "# Planted\n\nPlanted text."})
    assert post_ndjson(client, mine, body, reader).status_code == 403
    other = post_ndjson(client, theirs, body, writer)
    assert other.status_code == 404
    missing = post_ndjson(client, "col_000000000000000000000000", body, writer)
    assert other.json()["detail"] == missing.json()["detail"].replace(
        "col_000000000000000000000000", theirs
    )
    files = [("file", ("b.md", BRIDGE, "text/markdown"))]
    assert client.post(batch_path(theirs), files=files, headers=writer).status_code == 404
    admin = {"X-API-Key": make_key("admin")}
    assert client.get(f"/v1/collections/{theirs}/documents", headers=admin).json() == {
        "documents": [],
        "next_cursor": None,
    }
    assert post_ndjson(client, mine, body, writer).json()["created"] == 1


def test_allow_and_options_name_post(client: TestClient) -> None:
    cid = new_collection(client)
    options = client.options(batch_path(cid))
    assert options.status_code == 204
    assert options.headers["allow"] == "POST"
    wrong = client.get(batch_path(cid))
    assert wrong.status_code == 405
    assert wrong.headers["allow"] == "POST"
    assert client.options(f"/v1/collections/{cid}/documents").headers["allow"] == "GET, POST"


def test_openapi_declares_both_bodies(client: TestClient) -> None:
    operation = client.get("/openapi.json").json()["paths"][
        "/v1/collections/{collection_id}/documents:batch"
    ]["post"]
    content = operation["requestBody"]["content"]
    assert set(content) == {"multipart/form-data", "application/x-ndjson"}
    assert content["multipart/form-data"]["schema"]["properties"]["file"]["maxItems"] == 100
    titles = {v["title"] for v in content["application/x-ndjson"]["schema"]["oneOf"]}
    assert titles == {"TextDocumentCreate", "UrlDocumentCreate"}
    assert operation["responses"]["200"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/BatchResult"
    }
    for status in ("401", "403", "404", "413", "415", "422", "429"):
        assert status in operation["responses"], status


def test_two_hundred_files_from_a_laptop_within_the_defaults(
    make_client: Callable[..., TestClient],
) -> None:
    """The issue's case: a script pushing a folder of 200 files on default settings
    (rate limits on, no key) is served in two batches."""
    client = make_client(max_upload_mb=50)  # every other setting at its default
    cid = new_collection(client)
    created = 0
    for start in (0, 100):
        files: Files = [
            (
                "file",
                (
                    f"note-{i}.md",
                    f"# Note {i}\n\nThis is note number {i}.".encode(),
                    "text/markdown",
                ),
            )
            for i in range(start, start + 100)
        ]
        response = client.post(batch_path(cid), files=files)
        assert response.status_code == 200, response.text
        created += response.json()["created"]
    assert created == 200
    counts = client.get("/v1/ingestion").json()["collections"][cid]
    assert counts["queued"] == 200
