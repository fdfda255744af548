"""Uploads are parsed by the worker, within its bounds, not in the request: the API side
of issue 14's work-amplification cases, on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from ragd.config import Settings, load_settings
from ragd.container import Container
from tests.ingest.bombs import shared_stream_pdf

Drain = Callable[[], int]

MARKDOWN = "# Tower Bridge\n\nTower Bridge crosses the River Thames in London.\n"


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    return load_settings(
        data_dir=tmp_path,
        database_url=database_url,
        inprocess_worker=False,
        max_upload_mb=1,
        parse_max_chars=5_000,
        parse_timeout_s=3600,
        worker_poll_interval_s=0.1,
        log_format="json",
    )


def new_collection(client: TestClient) -> str:
    collection_id: str = client.post("/v1/collections", json={"name": "docs"}).json()["id"]
    return collection_id


def upload(client: TestClient, cid: str, name: str, data: bytes, mime: str) -> Any:
    return client.post(f"/v1/collections/{cid}/documents", files={"file": (name, data, mime)})


def test_html_upload_is_parsed_by_the_worker_within_the_bounds(
    client: TestClient, drain: Drain
) -> None:
    """HTML used to be parsed in the request, with no bound on its text at all."""
    cid = new_collection(client)
    small = upload(client, cid, "a.html", b"<html><body><p>Short page.</p></body></html>", "")
    big = upload(
        client, cid, "b.html", b"<html><body><p>" + b"word " * 5_000 + b"</p></body></html>", ""
    )
    assert small.status_code == big.status_code == 202
    assert small.json()["content_hash"] is None  # not parsed yet: the worker does it
    drain()
    ready = client.get(f"/v1/documents/{small.json()['id']}").json()
    assert ready["status"] == "ready"
    assert len(ready["content_hash"]) == 64
    failed = client.get(f"/v1/documents/{big.json()['id']}").json()
    assert (failed["status"], failed["error"]) == (
        "failed",
        "HTML text exceeds 5,000 characters",
    )


def test_identical_bytes_are_200_and_equal_text_is_a_duplicate_at_completion(
    client: TestClient, drain: Drain
) -> None:
    cid = new_collection(client)
    first = upload(client, cid, "a.md", MARKDOWN.encode(), "text/markdown")
    same_bytes = upload(client, cid, "copy.md", MARKDOWN.encode(), "text/markdown")
    assert (first.status_code, same_bytes.status_code) == (202, 200)
    assert same_bytes.json()["id"] == first.json()["id"]
    # Same text after normalization, other bytes: only the parse can tell.
    crlf = upload(client, cid, "crlf.md", MARKDOWN.replace("\n", "  \r\n").encode(), "")
    assert crlf.status_code == 202
    drain()
    late = client.get(f"/v1/documents/{crlf.json()['id']}").json()
    assert late["status"] == "failed"
    assert late["error"] == f"duplicate content: same as document {first.json()['id']}"


def post_text(client: TestClient, cid: str, text: str, **fields: Any) -> Any:
    return client.post(f"/v1/collections/{cid}/documents", json={"text": text, **fields})


def test_json_text_is_parsed_by_the_worker_within_the_bounds(
    client: TestClient, drain: Drain
) -> None:
    """A JSON text body used to be normalized and parsed as Markdown inside the request:
    a megabyte of pathological Markdown is queued as it is and fails in the worker."""
    cid = new_collection(client)
    headings = "".join(f"# h{i}\n" for i in range(100_000))  # ~0.8 MB of headings
    big = post_text(client, cid, headings)
    small = post_text(client, cid, MARKDOWN)
    assert (big.status_code, small.status_code) == (202, 202)
    for queued in (big.json(), small.json()):  # not parsed yet: the worker does it
        assert (queued["status"], queued["content_hash"], queued["chunk_count"]) == (
            "queued",
            None,
            0,
        )
    drain()
    failed = client.get(f"/v1/documents/{big.json()['id']}").json()
    assert (failed["status"], failed["error"]) == (
        "failed",
        "document text exceeds 5,000 characters",
    )
    ready = client.get(f"/v1/documents/{small.json()['id']}").json()
    assert ready["status"] == "ready"
    assert ready["title"] == "Tower Bridge"  # from the heading, found by the worker
    assert len(ready["content_hash"]) == 64


def test_json_text_is_a_duplicate_by_raw_text_then_by_normalized_text(
    client: TestClient, drain: Drain
) -> None:
    cid = new_collection(client)
    first = post_text(client, cid, MARKDOWN)
    same = post_text(client, cid, MARKDOWN)
    assert (first.status_code, same.status_code) == (202, 200)
    assert same.json()["id"] == first.json()["id"]
    crlf = post_text(client, cid, MARKDOWN.replace("\n", "  \r\n"))
    assert crlf.status_code == 202
    drain()
    late = client.get(f"/v1/documents/{crlf.json()['id']}").json()
    assert late["status"] == "failed"
    assert late["error"] == f"duplicate content: same as document {first.json()['id']}"
    # The bytes of a file upload are no JSON text: a Markdown file may be parsed otherwise.
    as_file = upload(client, cid, "t.md", MARKDOWN.encode(), "text/markdown")
    assert as_file.status_code == 202


def test_bad_text_is_still_refused_at_submission(client: TestClient) -> None:
    cid = new_collection(client)
    blank = upload(client, cid, "w.md", b"  \n\n \t ", "text/markdown")
    broken = upload(client, cid, "b.html", b"<html>caf\xc3\x28</html>", "text/html")
    blank_text = post_text(client, cid, " \n\t ")
    assert (blank.status_code, broken.status_code, blank_text.status_code) == (422, 422, 422)
    assert broken.headers["content-type"] == "application/problem+json"


@pytest.fixture
def running_worker(container: Container) -> Iterator[None]:
    stop = threading.Event()
    worker = container.new_worker()
    thread = threading.Thread(target=worker.run, args=(stop,), daemon=True)
    thread.start()
    yield
    stop.set()
    thread.join(60)
    assert not thread.is_alive()


def wait_for_status(client: TestClient, document_id: str, wanted: str) -> None:
    """Poll the API; the deadline only keeps a broken build from hanging."""
    deadline = time.monotonic() + 300
    while client.get(f"/v1/documents/{document_id}").json().get("status") != wanted:
        assert time.monotonic() < deadline, f"{document_id} never became {wanted}"
        time.sleep(0.1)


def test_delete_during_a_parse_is_204_and_frees_the_worker(
    client: TestClient, running_worker: None
) -> None:
    """A PDF of minutes of parser work, deleted while it parses: the next upload is
    processed (the parse deadline is an hour here, so only the deletion can free it)."""
    cid = new_collection(client)
    bomb = upload(client, cid, "bomb.pdf", shared_stream_pdf(), "application/pdf")
    assert bomb.status_code == 202
    wait_for_status(client, bomb.json()["id"], "processing")
    assert client.delete(f"/v1/documents/{bomb.json()['id']}").status_code == 204
    good = upload(client, cid, "good.md", MARKDOWN.encode(), "text/markdown")
    wait_for_status(client, good.json()["id"], "ready")
