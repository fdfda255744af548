"""``POST /v1/collections/{id}/reindex`` over the real app on both databases: the job it
queues and runs, its bounds as problem+json, and who may start one."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient

from ragd.container import Container

MakeKey = Callable[..., str]
Drain = Callable[[], int]


def collection_with_a_document(client: TestClient, drain: Drain, name: str = "handbook") -> str:
    cid = str(client.post("/v1/collections", json={"name": name}).json()["id"])
    text = (
        "# Leave\n\nEveryone gets 25 days of paid leave a year, taken in blocks of at least "
        "half a day, booked two weeks ahead with the team lead, who keeps the calendar.\n\n"
        "## Sick days\n\nTen sick days a year need no note; after three days in a row, a "
        "doctor's note goes to the office, which keeps it private and returns it on request."
    )
    client.post(f"/v1/collections/{cid}/documents", json={"text": text})
    assert drain() == 1
    return cid


def test_reindex_runs_as_a_job(client: TestClient, container: Container, drain: Drain) -> None:
    cid = collection_with_a_document(client, drain)
    before = client.get(f"/v1/collections/{cid}").json()
    response = client.post(f"/v1/collections/{cid}/reindex", json={"chunk_size": 16})
    assert response.status_code == 202
    job = response.json()
    assert response.headers["location"] == f"/v1/jobs/{job['id']}"
    assert job["kind"] == "reindex" and job["status"] == "queued"
    assert job["collection_id"] == cid and job["created_by"] == "local"
    conflict = client.post(f"/v1/collections/{cid}/reindex")
    assert conflict.status_code == 409
    assert conflict.headers["content-type"].startswith("application/problem+json")

    assert container.jobs.run_once("host:1:api")
    done = client.get(f"/v1/jobs/{job['id']}").json()
    assert done["status"] == "succeeded", done["error"]
    assert (done["done"], done["total"]) == (1, 1)
    assert done["result"]["chunk_max_tokens"] == 16
    after = client.get(f"/v1/collections/{cid}").json()
    assert after["chunk_count"] > before["chunk_count"]
    hits = client.post("/v1/search", json={"query": "paid leave", "collections": [cid]})
    assert hits.status_code == 200 and hits.json()["results"]
    # No body at all: the configured model and the collection's chunk size, now 16.
    again = client.post(f"/v1/collections/{cid}/reindex")
    assert again.status_code == 202
    assert container.jobs.run_once("host:1:api")
    assert client.get(f"/v1/jobs/{again.json()['id']}").json()["result"]["chunk_max_tokens"] == 16


@pytest.mark.parametrize(
    "body",
    [
        {"chunk_size": 15},
        {"chunk_size": 8193},
        {"chunk_size": "big"},
        {"model": ""},
        {"model": "m" * 501},
        {"model": "another-model"},
        {"unknown": 1},
        [],
    ],
)
def test_bad_reindex_requests_are_problems(
    client: TestClient, container: Container, drain: Drain, body: Any
) -> None:
    cid = collection_with_a_document(client, drain)
    response = client.post(f"/v1/collections/{cid}/reindex", json=body)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert client.get("/v1/jobs").json()["jobs"] == []


def test_bounds_are_accepted(client: TestClient, container: Container, drain: Drain) -> None:
    cid = collection_with_a_document(client, drain)
    for size in (16, 8192):
        response = client.post(f"/v1/collections/{cid}/reindex", json={"chunk_size": size})
        assert response.status_code == 202
        client.post(f"/v1/jobs/{response.json()['id']}/cancel")
    model = container.embedder.model_name
    assert client.post(f"/v1/collections/{cid}/reindex", json={"model": model}).status_code == 202


def test_who_may_reindex(
    client: TestClient,
    remote_client: TestClient,
    container: Container,
    drain: Drain,
    make_key: MakeKey,
) -> None:
    mine = collection_with_a_document(client, drain, "mine")
    other = collection_with_a_document(client, drain, "other")
    reader = {"X-API-Key": make_key("read")}
    limited = {"X-API-Key": make_key("write", collections=[mine])}
    assert remote_client.post(f"/v1/collections/{mine}/reindex", headers=reader).status_code == 403
    assert (
        remote_client.post(f"/v1/collections/{other}/reindex", headers=limited).status_code == 404
    )
    assert (
        remote_client.post("/v1/collections/col_missing/reindex", headers=limited).status_code
        == 404
    )
    started = remote_client.post(f"/v1/collections/{mine}/reindex", headers=limited)
    assert started.status_code == 202
    job = started.json()
    assert job["created_by"] != "local" and len(job["created_by"]) >= 4
    assert (
        remote_client.get(job["id"] and f"/v1/jobs/{job['id']}", headers=limited).status_code == 200
    )
    assert remote_client.post(f"/v1/collections/{mine}/reindex").status_code == 401
