"""Office files, e-books, spreadsheets and bombs through the API and a real worker (issue
16): each format ends `ready` with the heading paths its structure gives, each malicious
file ends as a 4xx or `failed` with a readable reason, and the server keeps serving."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from ragd.config import Settings, load_settings
from tests.ingest import bombs
from tests.ingest.office import (
    make_docx,
    make_epub,
    make_pptx,
    make_xlsx,
    replace_member,
    styled_empty_cells_xlsx,
)

Drain = Callable[[], int]


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    """The API tests' settings, with room for a million-cell sheet (3 MB) and a member
    cap a small upload can exceed."""
    return load_settings(
        data_dir=tmp_path,
        database_url=database_url,
        inprocess_worker=False,
        max_upload_mb=8,
        zip_max_members=1_000,
        log_format="json",
    )


def upload(client: TestClient, cid: str, name: str, data: bytes, mime: str = "") -> Any:
    return client.post(f"/v1/collections/{cid}/documents", files={"file": (name, data, mime)})


def chunks(client: TestClient, did: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = client.get(f"/v1/documents/{did}/chunks").json()["chunks"]
    return found


def test_every_format_is_ready_with_its_structure(client: TestClient, drain: Drain) -> None:
    cid = client.post("/v1/collections", json={"name": "formats"}).json()["id"]
    files = {
        # A Word file named .pdf and declared as PDF: the content decides.
        "handbook.pdf": (make_docx(rows=40), "application/pdf"),
        "deck.pptx": (make_pptx([("Welcome aboard", "Ferries leave hourly.")]), ""),
        "fleet.xlsx": (make_xlsx({"Fleet": [["Boat", "Length"], ["Aurora", 12]]}), ""),
        "book.epub": (make_epub([("Arrival", "<p>The keeper rowed out at dawn.</p>")]), ""),
        "people.csv": (b"name,city\nann,paris\nbob,rome\n", "text/csv"),
        "config.json": (json.dumps({"database": {"url": "sqlite://"}}).encode(), ""),
        "loader.py": (b"# loads the config\nimport os\n", ""),
    }
    ids = {}
    for name, (data, mime) in files.items():
        response = upload(client, cid, name, data, mime)
        assert response.status_code == 202, (name, response.text)
        ids[name] = response.json()["id"]
    drain()
    for name, did in ids.items():
        document = client.get(f"/v1/documents/{did}").json()
        assert document["status"] == "ready", (name, document["error"])
    handbook = chunks(client, ids["handbook.pdf"])
    assert (
        client.get(f"/v1/documents/{ids['handbook.pdf']}")
        .json()["mime_type"]
        .endswith("wordprocessingml.document")
    )
    table = [c for c in handbook if "EUR" in c["text"]]
    assert len(table) > 1  # cut across chunks, each with the header row
    assert all(
        c["text"].startswith("| Berth | Length | Fee |") or "Fees are" in c["text"] for c in table
    )
    assert all(c["heading_path"] == ["Moorings", "Fees"] for c in table)
    assert chunks(client, ids["deck.pptx"])[0]["heading_path"] == ["Welcome aboard"]
    [fleet] = chunks(client, ids["fleet.xlsx"])
    assert (fleet["heading_path"], fleet["text"]) == (
        ["Fleet"],
        "| Boat | Length |\n|-|-|\n| Aurora | 12 |",
    )
    assert chunks(client, ids["book.epub"])[0]["heading_path"] == ["Arrival"]
    assert chunks(client, ids["people.csv"])[0]["text"].startswith("| name | city |")
    assert chunks(client, ids["config.json"])[0]["heading_path"] == ["database"]
    [code] = chunks(client, ids["loader.py"])
    assert code["heading_path"] == [] and code["text"].startswith("# loads the config")
    found = client.post("/v1/search", json={"query": "mooring licence", "mode": "keyword"})
    assert ids["handbook.pdf"] in {hit["document_id"] for hit in found.json()["results"]}


@pytest.mark.parametrize(
    ("name", "build", "status", "reason"),
    [
        ("bomb.docx", bombs.zip_bomb, 422, "possible ZIP bomb"),
        ("many.docx", lambda: bombs.many_members_zip(2_000), 422, "more than 1,000 members"),
        ("secret.docx", bombs.encrypted_office_file, 415, "encrypted Office document"),
    ],
)
def test_bad_containers_are_refused_at_upload(
    client: TestClient, name: str, build: Callable[[], bytes], status: int, reason: str
) -> None:
    cid = client.post("/v1/collections", json={"name": "bad"}).json()["id"]
    response = upload(client, cid, name, build())
    assert response.status_code == status
    assert response.headers["content-type"].startswith("application/problem+json")
    assert reason in response.json()["detail"]
    assert client.get("/v1/collections/bad/documents").json()["documents"] == []


def test_bad_contents_fail_in_the_worker_and_the_server_keeps_serving(
    client: TestClient, drain: Drain
) -> None:
    cid = client.post("/v1/collections", json={"name": "worse"}).json()["id"]
    xxe = (
        b'<?xml version="1.0"?><!DOCTYPE html [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
        b'<html xmlns="http://www.w3.org/1999/xhtml"><body><p>&x;</p></body></html>'
    )
    bad = {
        "cells.xlsx": (styled_empty_cells_xlsx(1_000_000), "more than 200,000 cells"),
        "xxe.epub": (
            replace_member(make_epub([("C", "<p>x</p>")]), "EPUB/chapter1.xhtml", xxe),
            "declares a DTD or entities",
        ),
        "lying.docx": (bombs.lying_size_zip(declared=100, actual=2_000_000), "damaged"),
    }
    ids = {}
    for name, (data, _) in bad.items():
        response = upload(client, cid, name, data)
        assert response.status_code == 202, (name, response.text)
        ids[name] = response.json()["id"]
    good = upload(client, cid, "ok.docx", make_docx()).json()["id"]
    drain()
    for name, (_, reason) in bad.items():
        document = client.get(f"/v1/documents/{ids[name]}").json()
        assert document["status"] == "failed" and reason in document["error"], (name, document)
        assert "root:" not in document["error"]  # nothing of /etc/passwd leaked
    assert client.get(f"/v1/documents/{good}").json()["status"] == "ready"
    assert client.get("/livez").status_code == 200
