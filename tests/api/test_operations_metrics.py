"""The metrics behind the alert rules in deploy/prometheus: the oldest queued
document's age, the worker heartbeat and last claim, and readiness, each recorded by the
real event (an upload waiting, a worker cycle, a /readyz probe)."""

from __future__ import annotations

import threading
import time

from fastapi.testclient import TestClient

from tests.api.conftest import Drain
from tests.api.test_metrics_api import scrape, value


def test_queue_age_and_worker_timestamps_follow_the_queue(client: TestClient, drain: Drain) -> None:
    cid = client.post("/v1/collections", json={"name": "kb"}).json()["id"]
    assert value(scrape(client), "ragd_ingest_oldest_queued_age_seconds") == 0  # none queued

    posted = time.time()
    doc = client.post(f"/v1/collections/{cid}/documents", json={"text": "# Tides\n\nMoon."})
    assert doc.status_code == 202
    waiting = scrape(client)
    scraped = time.time()
    age = value(waiting, "ragd_ingest_oldest_queued_age_seconds")
    # Waiting since it was posted: no older than the time since (plus clock resolution).
    assert 0 <= age <= scraped - posted + 1.0

    drain()
    after = scrape(client)
    finished = time.time()
    assert value(after, "ragd_ingest_oldest_queued_age_seconds") == 0
    for name in (
        "ragd_worker_heartbeat_timestamp_seconds",
        "ragd_worker_last_claim_timestamp_seconds",
    ):
        # The drain ran on this thread; other threads' beats are older, not newer.
        beat = value(after, name, thread=threading.current_thread().name)
        assert posted - 1.0 <= beat <= finished + 1.0, name


def test_readiness_is_exported_as_the_probe_saw_it(client: TestClient) -> None:
    assert client.get("/readyz").status_code == 200
    samples = scrape(client)
    for check in ("database", "embedder"):
        success = value(samples, "ragd_readiness_check_success", check=check, required="true")
        assert success == 1, check
