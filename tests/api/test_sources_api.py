"""/v1/collections/{id}/sources and /v1/sources/{id} over the real app, on both
databases: the secret is shown once, scopes and collection limits hold, and bad input
is a 422 problem."""

from __future__ import annotations

import json
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.api.conftest import MakeKey

SITEMAP = {"type": "sitemap", "location": "https://example.com/sitemap.xml"}


def make_collection(client: TestClient, name: str = "docs", **headers: str) -> str:
    response = client.post("/v1/collections", json={"name": name}, headers=headers)
    assert response.status_code == 201, response.text
    collection_id: str = response.json()["id"]
    return collection_id


def create(client: TestClient, cid: str, body: dict[str, Any], **headers: str) -> Any:
    # json.dumps escapes a lone surrogate as \ud800, as a hostile client would send it.
    return client.post(
        f"/v1/collections/{cid}/sources",
        content=json.dumps(body),
        headers={"Content-Type": "application/json", **headers},
    )


def test_create_shows_the_secret_once_then_list_get_rotate_delete(client: TestClient) -> None:
    cid = make_collection(client)
    response = create(client, cid, {**SITEMAP, "schedule": {"interval_s": 3600}})
    assert response.status_code == 201, response.text
    created = response.json()
    source_id = created["id"]
    assert response.headers["Location"] == f"/v1/sources/{source_id}"
    assert created["secret"].startswith("whsec_")
    assert created["webhook_url"] == f"/v1/sources/{source_id}/webhook"
    assert created["last_status"] == "never" and created["next_sync_at"] is not None
    assert created["last_items"] == {
        "added": 0,
        "updated": 0,
        "deleted": 0,
        "failed": 0,
        "unchanged": 0,
    }

    got = client.get(f"/v1/sources/{source_id}").json()
    assert "secret" not in got and got["schedule"] == {"interval_s": 3600}
    listed = client.get(f"/v1/collections/{cid}/sources").json()["sources"]
    assert [s["id"] for s in listed] == [source_id] and "secret" not in listed[0]

    rotated = client.post(f"/v1/sources/{source_id}/rotate-secret")
    assert rotated.status_code == 200
    assert rotated.json()["secret"] not in (created["secret"], "")

    assert client.delete(f"/v1/sources/{source_id}").status_code == 204
    assert client.get(f"/v1/sources/{source_id}").status_code == 404
    assert client.delete(f"/v1/sources/{source_id}").status_code == 404


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({"type": "ftp", "location": "x"}, "type"),
        ({"type": "sitemap", "location": "file:///etc/passwd"}, "http"),
        ({"type": "sitemap", "location": "http://127.0.0.1/x"}, "not a public address"),
        ({"type": "sitemap", "location": ""}, "location"),
        ({"type": "urls", "location": ["https://a.example/"] * 1001}, "1000"),
        ({"type": "urls", "location": []}, "location"),
        ({"type": "urls", "location": ["https://a.example/\ud800"]}, "unicode"),
        ({**SITEMAP, "schedule": {"interval_s": 59}}, "RAGD_SOURCES_MIN_INTERVAL_S"),
        ({**SITEMAP, "schedule": {"interval_s": 2_592_001}}, "interval_s"),
        ({**SITEMAP, "schedule": {"every": 5}}, "schedule"),
        ({**SITEMAP, "mapping": {"key_column": "id"}}, "no mapping"),
        ({**SITEMAP, "surprise": 1}, "surprise"),
        ({"type": "spreadsheet", "location": "https://a.example/s.csv"}, "mapping"),
        ({"type": "folder", "location": "/srv/docs"}, "RAGD_SOURCES_FOLDER_ROOTS"),
    ],
)
def test_bad_sources_are_422(client: TestClient, body: dict[str, Any], fragment: str) -> None:
    cid = make_collection(client)
    response = create(client, cid, body)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert fragment in response.text
    assert client.get(f"/v1/collections/{cid}/sources").json()["sources"] == []


def test_unknown_collection_and_source_are_404(client: TestClient) -> None:
    assert create(client, "col_missing", SITEMAP).status_code == 404
    assert client.get("/v1/collections/col_missing/sources").status_code == 404
    for method, path in (
        ("GET", "/v1/sources/src_missing"),
        ("DELETE", "/v1/sources/src_missing"),
        ("POST", "/v1/sources/src_missing/rotate-secret"),
    ):
        assert client.request(method, path).status_code == 404


def test_scopes_and_collection_limits(client: TestClient, make_key: MakeKey) -> None:
    admin = {"Authorization": f"Bearer {make_key('admin')}"}
    mine = make_collection(client, "mine", **admin)
    theirs = make_collection(client, "theirs", **admin)
    theirs_source = create(client, theirs, SITEMAP, **admin).json()["id"]
    mine_source = create(client, mine, SITEMAP, **admin).json()["id"]

    read = {"Authorization": f"Bearer {make_key('read')}"}
    assert create(client, mine, SITEMAP, **read).status_code == 403
    assert client.get(f"/v1/sources/{mine_source}", headers=read).status_code == 200
    assert client.delete(f"/v1/sources/{mine_source}", headers=read).status_code == 403
    rotate = client.post(f"/v1/sources/{mine_source}/rotate-secret", headers=read)
    assert rotate.status_code == 403

    limited = {"Authorization": f"Bearer {make_key('write', collections=[mine])}"}
    assert create(client, theirs, SITEMAP, **limited).status_code == 404
    assert client.get(f"/v1/sources/{theirs_source}", headers=limited).status_code == 404
    assert client.delete(f"/v1/sources/{theirs_source}", headers=limited).status_code == 404
    listed = client.get(f"/v1/collections/{theirs}/sources", headers=limited)
    assert listed.status_code == 404
    assert create(client, mine, SITEMAP, **limited).status_code == 201
    assert client.get("/v1/sources/" + theirs_source).status_code == 401  # no key now
