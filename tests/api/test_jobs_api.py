"""/v1/jobs over the real app on both databases: a job's progress and outcome, paging,
cancel, bad input as problem+json, and scoping like collections (a key sees the jobs of
the collections it may see; jobs of no collection only with an unlimited admin key)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient

from ragd.container import Container
from ragd.domain import JobInfo
from ragd.services.jobs import JobContext

MakeKey = Callable[..., str]
KIND = "test.count"
OWNER = "host:1:api-test"


def count(job: JobInfo, ctx: JobContext) -> dict[str, Any]:
    total = int(job.params["to"])
    for i in range(total):
        ctx.progress(i + 1, total)
    return {"counted": total}


@pytest.fixture
def jobs_container(container: Container) -> Container:
    container.jobs.register(KIND, count)
    return container


def submit(container: Container, collection_id: str | None, to: int = 3) -> str:
    job = container.jobs.submit(
        kind=KIND, collection_id=collection_id, params={"to": to}, actor="local"
    )
    return job.id


def collection(client: TestClient, name: str) -> str:
    response = client.post("/v1/collections", json={"name": name})
    assert response.status_code == 201
    return str(response.json()["id"])


def test_job_progress_and_result(client: TestClient, jobs_container: Container) -> None:
    cid = collection(client, "alpha")
    job_id = submit(jobs_container, cid, to=5)
    queued = client.get(f"/v1/jobs/{job_id}")
    assert queued.status_code == 200
    body = queued.json()
    assert body["status"] == "queued" and body["kind"] == KIND
    assert body["collection_id"] == cid and body["created_by"] == "local"
    assert (body["done"], body["total"], body["rate"], body["eta"]) == (0, None, None, None)
    assert body["result"] is None and body["error"] is None and body["started_at"] is None

    assert jobs_container.jobs.run_once(OWNER)
    done = client.get(f"/v1/jobs/{job_id}").json()
    assert done["status"] == "succeeded" and done["result"] == {"counted": 5}
    assert (done["done"], done["total"]) == (5, 5)
    assert done["started_at"] is not None and done["finished_at"] is not None
    assert done["eta"] is None and done["attempts"] == 1


def test_list_filters_and_pages(client: TestClient, jobs_container: Container) -> None:
    cid, other = collection(client, "alpha"), collection(client, "beta")
    ids = [submit(jobs_container, cid) for _ in range(3)]
    elsewhere = submit(jobs_container, other)
    listed = client.get("/v1/jobs").json()
    assert [job["id"] for job in listed["jobs"]] == [elsewhere, *reversed(ids)]
    assert listed["next_cursor"] is None
    of_cid = client.get("/v1/jobs", params={"collection_id": cid}).json()["jobs"]
    assert {job["id"] for job in of_cid} == set(ids)
    assert client.get("/v1/jobs", params={"kind": "other"}).json()["jobs"] == []
    client.post(f"/v1/jobs/{ids[0]}/cancel")
    cancelled = client.get("/v1/jobs", params={"status": "cancelled"}).json()["jobs"]
    assert [job["id"] for job in cancelled] == [ids[0]]

    seen: list[str] = []
    params: dict[str, Any] = {"limit": 1}
    while True:
        page = client.get("/v1/jobs", params=params).json()
        seen.extend(job["id"] for job in page["jobs"])
        if page["next_cursor"] is None:
            break
        params["cursor"] = page["next_cursor"]
    assert seen == [elsewhere, *reversed(ids)]


def test_cancel_queued_and_running(client: TestClient, jobs_container: Container) -> None:
    cid = collection(client, "alpha")
    queued = submit(jobs_container, cid)
    response = client.post(f"/v1/jobs/{queued}/cancel")
    assert response.status_code == 200
    assert response.json()["status"] == "cancelled"
    assert jobs_container.jobs.run_once(OWNER) is False

    running = submit(jobs_container, cid)
    claimed = jobs_container.store.claim_background_job(owner=OWNER, kinds=[KIND], lease_s=60)
    assert claimed is not None and claimed.id == running
    asked = client.post(f"/v1/jobs/{running}/cancel").json()
    assert asked["status"] == "running" and asked["cancel_requested"] is True
    # Cancelling again, or a finished job, answers the job as it is.
    assert client.post(f"/v1/jobs/{queued}/cancel").json()["status"] == "cancelled"


@pytest.mark.parametrize(
    ("path", "params"),
    [
        ("/v1/jobs", {"status": "sleeping"}),
        ("/v1/jobs", {"limit": 0}),
        ("/v1/jobs", {"limit": 101}),
        ("/v1/jobs", {"limit": "many"}),
        ("/v1/jobs", {"cursor": "not-a-cursor"}),
        ("/v1/jobs", {"cursor": "x" * 501}),
        ("/v1/jobs", {"kind": "k" * 65}),
        ("/v1/jobs", {"collection_id": "c" * 201}),
    ],
)
def test_bad_input_is_a_problem(
    client: TestClient, jobs_container: Container, path: str, params: dict[str, Any]
) -> None:
    response = client.get(path, params=params)
    assert response.status_code == 422
    assert response.headers["content-type"].startswith("application/problem+json")


def test_limit_at_the_bound_is_fine(client: TestClient, jobs_container: Container) -> None:
    assert client.get("/v1/jobs", params={"limit": 100}).status_code == 200
    assert client.get("/v1/jobs", params={"limit": 1}).status_code == 200


def test_unknown_job_is_a_404_problem(client: TestClient, jobs_container: Container) -> None:
    for response in (
        client.get("/v1/jobs/job_missing"),
        client.post("/v1/jobs/job_missing/cancel"),
        client.get("/v1/jobs/" + "é" * 300),
    ):
        assert response.status_code == 404
        assert response.headers["content-type"].startswith("application/problem+json")


def test_keys_see_jobs_as_they_see_collections(
    client: TestClient, remote_client: TestClient, jobs_container: Container, make_key: MakeKey
) -> None:
    alpha, beta = collection(client, "alpha"), collection(client, "beta")
    in_alpha, in_beta, unscoped = (
        submit(jobs_container, alpha),
        submit(jobs_container, beta),
        submit(jobs_container, None),
    )
    keys = {
        "admin": make_key("admin"),
        "reader": make_key("read"),
        "writer": make_key("write"),
        "alpha_admin": make_key("admin", collections=[alpha]),
        "alpha_writer": make_key("write", collections=[alpha]),
    }

    def as_key(name: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {keys[name]}"}

    visible = {
        "admin": {in_alpha, in_beta, unscoped},
        "reader": {in_alpha, in_beta},
        "writer": {in_alpha, in_beta},
        "alpha_admin": {in_alpha},
        "alpha_writer": {in_alpha},
    }
    for name, expected in visible.items():
        listed = remote_client.get("/v1/jobs", headers=as_key(name)).json()["jobs"]
        assert {job["id"] for job in listed} == expected, name
        for job_id in (in_alpha, in_beta, unscoped):
            status = remote_client.get(f"/v1/jobs/{job_id}", headers=as_key(name)).status_code
            assert status == (200 if job_id in expected else 404), (name, job_id)

    limited = remote_client.get(
        "/v1/jobs", params={"collection_id": beta}, headers=as_key("alpha_admin")
    )
    assert limited.status_code == 404
    assert remote_client.get("/v1/jobs").status_code == 401

    read_cancel = remote_client.post(f"/v1/jobs/{in_alpha}/cancel", headers=as_key("reader"))
    assert read_cancel.status_code == 403
    for name, job_id in (("alpha_writer", in_beta), ("writer", unscoped)):
        response = remote_client.post(f"/v1/jobs/{job_id}/cancel", headers=as_key(name))
        assert response.status_code == 404, name
    ok = remote_client.post(f"/v1/jobs/{in_alpha}/cancel", headers=as_key("alpha_writer"))
    assert ok.status_code == 200 and ok.json()["status"] == "cancelled"
    admin = remote_client.post(f"/v1/jobs/{unscoped}/cancel", headers=as_key("admin"))
    assert admin.status_code == 200 and admin.json()["status"] == "cancelled"
