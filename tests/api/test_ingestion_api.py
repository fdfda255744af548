"""``GET /v1/ingestion``: queue depth and per-collection status counts for the web page."""

from __future__ import annotations

from collections.abc import Callable

from fastapi.testclient import TestClient

from tests.api.conftest import MakeKey

Drain = Callable[[], int]
ZERO = {"queued": 0, "processing": 0, "ready": 0, "failed": 0}


def test_counts_follow_ingestion(client: TestClient, drain: Drain) -> None:
    first = client.post("/v1/collections", json={"name": "first"}).json()["id"]
    second = client.post("/v1/collections", json={"name": "second"}).json()["id"]
    assert client.get("/v1/ingestion").json() == {
        "queue_depth": 0,
        "collections": {first: ZERO, second: ZERO},
    }
    for text in ("# One\n\nAlpha text.", "# Two\n\nBeta text."):
        assert client.post(f"/v1/collections/{first}/documents", json={"text": text}).is_success
    pending = client.get("/v1/ingestion").json()
    assert pending["queue_depth"] == 2
    assert pending["collections"][first] == {**ZERO, "queued": 2}
    drain()
    done = client.get("/v1/ingestion").json()
    assert done == {"queue_depth": 0, "collections": {first: {**ZERO, "ready": 2}, second: ZERO}}


def test_limited_key_sees_only_its_collections(
    remote_client: TestClient, make_key: MakeKey
) -> None:
    admin = {"Authorization": f"Bearer {make_key('admin')}"}
    mine = remote_client.post("/v1/collections", json={"name": "mine"}, headers=admin).json()["id"]
    other = remote_client.post("/v1/collections", json={"name": "other"}, headers=admin).json()
    remote_client.post(
        f"/v1/collections/{other['id']}/documents", json={"text": "Hidden."}, headers=admin
    )
    limited = {"Authorization": f"Bearer {make_key('read', collections=[mine])}"}
    body = remote_client.get("/v1/ingestion", headers=limited).json()
    assert body == {"queue_depth": 0, "collections": {mine: ZERO}}
    assert remote_client.get("/v1/ingestion").status_code == 401
