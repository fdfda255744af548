"""Source webhooks and sync jobs over the real app, on both databases: only a correctly
signed, fresh, first-seen request queues a sync; a burst of triggers is one job; the
job runner syncs; the schedule queues each due run once."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from ragd.config import Settings, load_settings
from ragd.container import Container
from ragd.services.sources import sign
from tests.api.fake_site import Site, page, running_site


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    return load_settings(
        data_dir=tmp_path,
        database_url=database_url,
        inprocess_worker=False,
        allow_private_urls=True,
        rate_limit_enabled=False,
        webhook_tolerance_s=300,
        log_format="json",
    )


@pytest.fixture
def site() -> Iterator[Site]:
    with running_site() as running:
        yield running


def new_source(client: TestClient, site: Site, **extra: Any) -> dict[str, Any]:
    cid = client.post("/v1/collections", json={"name": "hooked"}).json()["id"]
    url = site.put("/a", page("A", "Alpha content for the webhook test."))
    body = {"type": "urls", "location": [url], **extra}
    response = client.post(f"/v1/collections/{cid}/sources", json=body)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def deliver(
    client: TestClient,
    source_id: str,
    secret: str,
    body: bytes = b'{"event": "push"}',
    *,
    at: int | None = None,
    signature: str | None = None,
    headers: dict[str, str] | None = None,
) -> Any:
    stamp = str(int(time.time()) if at is None else at)
    sent = {
        "X-Ragd-Timestamp": stamp,
        "X-Ragd-Signature": signature or sign(secret, stamp, body),
        "Content-Type": "application/json",
    }
    if headers is not None:
        sent = headers
    return client.post(f"/v1/sources/{source_id}/webhook", content=body, headers=sent)


def sync_jobs(client: TestClient) -> list[dict[str, Any]]:
    jobs: list[dict[str, Any]] = client.get("/v1/jobs", params={"kind": "source_sync"}).json()[
        "jobs"
    ]
    return jobs


def test_a_signed_webhook_queues_one_sync_and_the_runner_syncs(
    client: TestClient, container: Container, site: Site
) -> None:
    source = new_source(client, site)
    response = deliver(client, source["id"], source["secret"])
    assert response.status_code == 202, response.text
    job = response.json()
    assert job["kind"] == "source_sync" and job["status"] == "queued"
    assert response.headers["Location"] == f"/v1/jobs/{job['id']}"
    assert job["collection_id"] == source["collection_id"]

    # A burst of webhooks and a manual trigger while it waits: the same job.
    for n in range(5):
        again = deliver(client, source["id"], source["secret"], f'{{"n": {n}}}'.encode())
        assert again.status_code == 202 and again.json()["id"] == job["id"]
    manual = client.post(f"/v1/sources/{source['id']}/sync")
    assert manual.status_code == 202 and manual.json()["id"] == job["id"]
    assert len(sync_jobs(client)) == 1

    assert container.jobs.run_once("test-host:1:a")
    done = client.get(f"/v1/jobs/{job['id']}").json()
    assert done["status"] == "succeeded", done
    assert done["result"]["added"] == 1
    synced = client.get(f"/v1/sources/{source['id']}").json()
    assert synced["last_status"] == "ok" and synced["last_items"]["added"] == 1

    # Once that job ran, the next trigger is a new job.
    later = deliver(client, source["id"], source["secret"], b"later")
    assert later.status_code == 202 and later.json()["id"] != job["id"]


def _refused(response: Any, fragment: str) -> None:
    assert response.status_code == 401, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert fragment in response.json()["detail"]


def test_every_bad_webhook_is_401_and_runs_nothing(client: TestClient, site: Site) -> None:
    source = new_source(client, site)
    sid, secret = source["id"], source["secret"]
    now = int(time.time())
    body = b'{"event": "push"}'

    _refused(deliver(client, sid, secret, signature="sha256=" + "0" * 64), "does not match")
    _refused(deliver(client, sid, "whsec_not-the-secret"), "does not match")
    _refused(deliver(client, sid, secret, at=now - 301), "300 s")
    _refused(deliver(client, sid, secret, at=now + 301), "300 s")
    _refused(deliver(client, sid, secret, signature="md5=abc"), "sha256=")
    _refused(deliver(client, sid, secret, headers={}), "X-Ragd-Timestamp")
    stamp = str(now)
    good = sign(secret, stamp, body)
    _refused(deliver(client, sid, secret, headers={"X-Ragd-Signature": good}), "headers")
    _refused(deliver(client, sid, secret, headers={"X-Ragd-Timestamp": stamp}), "headers")
    _refused(
        deliver(
            client, sid, secret, headers={"X-Ragd-Timestamp": "soon", "X-Ragd-Signature": good}
        ),
        "Unix time",
    )
    # The body is signed: another body under the same signature is refused.
    _refused(deliver(client, sid, secret, b"tampered", at=now, signature=good), "does not match")
    # An unknown source reads exactly like a bad signature.
    _refused(deliver(client, "src_unknown", secret), "does not match")
    assert sync_jobs(client) == []

    first = deliver(client, sid, secret, body, at=now)
    assert first.status_code == 202
    _refused(deliver(client, sid, secret, body, at=now), "already received")  # the replay
    assert len(sync_jobs(client)) == 1


def test_rotating_the_secret_retires_the_old_one(client: TestClient, site: Site) -> None:
    source = new_source(client, site)
    rotated = client.post(f"/v1/sources/{source['id']}/rotate-secret").json()["secret"]
    _refused(deliver(client, source["id"], source["secret"]), "does not match")
    assert deliver(client, source["id"], rotated).status_code == 202


def test_webhook_body_bound(client: TestClient, site: Site) -> None:
    source = new_source(client, site)
    at_limit = b"x" * (1024 * 1024)
    assert deliver(client, source["id"], source["secret"], at_limit).status_code == 202
    over = deliver(client, source["id"], source["secret"], at_limit + b"x")
    assert over.status_code == 413
    assert over.headers["content-type"] == "application/problem+json"


def test_webhooks_need_no_key_but_manual_sync_needs_write(
    client: TestClient, site: Site, make_key: Any
) -> None:
    source = new_source(client, site)
    read = {"Authorization": f"Bearer {make_key('read')}"}
    assert deliver(client, source["id"], source["secret"]).status_code == 202  # no key sent
    assert client.post(f"/v1/sources/{source['id']}/sync", headers=read).status_code == 403
    assert client.post("/v1/sources/src_missing/sync", headers=read).status_code == 403
    write = {"Authorization": f"Bearer {make_key('write')}"}
    assert client.post("/v1/sources/src_missing/sync", headers=write).status_code == 404


def test_the_schedule_queues_each_due_run_once(
    client: TestClient, container: Container, site: Site
) -> None:
    scheduled = new_source(client, site, schedule={"interval_s": 3600})
    client.post(
        f"/v1/collections/{scheduled['collection_id']}/sources",
        json={"type": "urls", "location": [site.url("/a")]},  # no schedule: never due
    )
    assert container.sources.schedule_due() == 1
    assert container.sources.schedule_due() == 0  # a second scheduler finds nothing due
    jobs = sync_jobs(client)
    assert len(jobs) == 1 and jobs[0]["created_by"] == "scheduler"
    assert container.jobs.run_once("test-host:1:b")
    source = client.get(f"/v1/sources/{scheduled['id']}").json()
    assert source["last_status"] == "ok"
    assert source["next_sync_at"] > source["last_sync_at"]
