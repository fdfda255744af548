"""/metrics scraped and parsed with prometheus-client's own parser: request counters by
route template, queue depth, stage and search histograms, the allow-list, and the
multiprocess mode of ``ragd serve --workers 2``."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from ragd.api.app import create_app
from ragd.config import load_settings
from ragd.container import Container
from ragd.embedding import LocalEmbedder
from tests.api.conftest import Drain
from tests.generation.fake_openai import FakeOpenAI
from tests.helpers import LOOPBACK_CLIENT, REMOTE_CLIENT, start_server, stop_server

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def parse(text: str) -> Samples:
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def scrape(client: TestClient | httpx.Client) -> Samples:
    response = client.get("/metrics")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return parse(response.text)


def test_metrics_follow_requests_ingestion_and_search(client: TestClient, drain: Drain) -> None:
    before = scrape(client)
    cid = client.post("/v1/collections", json={"name": "kb"}).json()["id"]
    text = "# Tides\n\nThe moon's gravity raises the tides twice a day."
    doc = client.post(f"/v1/collections/{cid}/documents", json={"text": text}).json()
    queued = scrape(client)
    assert value(queued, "ragd_ingest_queue_depth", status="queued") == 1
    assert value(queued, "ragd_documents", status="queued") == 1

    drain()
    assert client.get(f"/v1/documents/{doc['id']}").json()["status"] == "ready"
    for mode in ("keyword", "hybrid"):
        found = client.post("/v1/search", json={"query": "tides moon", "mode": mode})
        assert found.status_code == 200
    client.get("/v1/documents/no-such-document")
    client.get("/no/such/path")
    after = scrape(client)

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    route = "/v1/documents/{document_id}"
    assert delta("ragd_http_requests_total", method="GET", route=route, status="200") == 1
    assert delta("ragd_http_requests_total", method="GET", route=route, status="404") == 1
    assert delta("ragd_http_requests_total", method="GET", route="unmatched", status="404") == 1
    assert delta("ragd_http_requests_total", method="POST", route="/v1/search", status="200") == 2
    duration = "ragd_http_request_duration_seconds_count"
    assert delta(duration, method="POST", route="/v1/search", status="200") == 2
    assert not any("no-such-document" in str(labels) for _, labels in after)

    assert value(after, "ragd_ingest_queue_depth", status="queued") == 0
    assert value(after, "ragd_documents", status="ready") == 1
    assert value(after, "ragd_chunks") >= 1
    assert value(after, "ragd_collections") == 1
    assert value(after, "ragd_store_scrape_success") == 1
    for stage in ("parse", "chunk", "embed", "store"):
        assert delta("ragd_ingest_stage_duration_seconds_count", stage=stage) >= 1, stage
    assert delta("ragd_ingest_documents_total", outcome="ready") == 1
    assert delta("ragd_search_duration_seconds_count", mode="keyword") == 1
    assert delta("ragd_search_duration_seconds_count", mode="hybrid") == 1
    assert delta("ragd_search_duration_seconds_count", mode="vector") == 0
    assert delta("ragd_embedding_batch_size_count") >= 2  # the document, then a query
    assert delta("ragd_embedding_duration_seconds_count") >= 2


@pytest.fixture
def public_client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app, client=("203.0.113.7", 4000)) as test_client:
        yield test_client


def test_metrics_are_refused_outside_the_allow_list(
    public_client: TestClient, remote_client: TestClient
) -> None:
    refused = public_client.get("/metrics")
    assert refused.status_code == 403
    assert refused.headers["content-type"] == "application/problem+json"
    assert "RAGD_METRICS_ALLOW" in refused.json()["detail"]
    # Private networks (where Prometheus usually runs) are allowed by default.
    assert remote_client.get("/metrics").status_code == 200


def test_metrics_allow_list_is_configurable(tmp_path: Path, embedder: LocalEmbedder) -> None:
    settings = load_settings(data_dir=tmp_path, inprocess_worker=False, metrics_allow="10.0.0.2")
    container = Container(settings, embedder=embedder)
    app = create_app(settings, container=container)
    with (
        TestClient(app, client=REMOTE_CLIENT) as remote,
        TestClient(app, client=LOOPBACK_CLIENT) as local,
    ):
        assert remote.get("/metrics").status_code == 200
        assert local.get("/metrics").status_code == 403
    container.close()


def test_rate_limit_rejections_are_counted(tmp_path: Path, embedder: LocalEmbedder) -> None:
    settings = load_settings(
        data_dir=tmp_path, inprocess_worker=False, rate_limit="1/hour", rate_limit_admin=True
    )
    container = Container(settings, embedder=embedder)
    with TestClient(create_app(settings, container=container), client=LOOPBACK_CLIENT) as c:
        before = value(scrape(c), "ragd_rate_limit_rejections_total", budget="default")
        assert [c.get("/v1/collections").status_code for _ in range(3)] == [200, 429, 429]
        after = value(scrape(c), "ragd_rate_limit_rejections_total", budget="default")
        assert after - before == 2
    container.close()


def test_workers_share_metrics_through_the_multiprocess_dir(tmp_path: Path) -> None:
    prom_dir = tmp_path / "prom"
    prom_dir.mkdir()
    stale = prom_dir / "counter_1.db"
    stale.write_bytes(b"left over from a previous run")
    process, server = start_server(
        tmp_path, args=["--workers", "2"], PROMETHEUS_MULTIPROC_DIR=str(prom_dir)
    )
    try:
        assert not stale.exists()  # wiped before the workers started
        requests = 12
        for _ in range(requests):  # a new connection each time, so both workers serve
            assert httpx.get(f"{server.base_url}/v1/collections", timeout=10).status_code == 200
        with httpx.Client(base_url=server.base_url, timeout=10) as http:
            for _ in range(3):  # whichever worker answers, the sum is the same
                samples = scrape(http)
                counted = value(
                    samples,
                    "ragd_http_requests_total",
                    method="GET",
                    route="/v1/collections",
                    status="200",
                )
                assert counted == requests
        pids = {path.stem.rsplit("_", 1)[-1] for path in prom_dir.glob("*.db")}
        assert len(pids) >= 2, sorted(p.name for p in prom_dir.iterdir())
    finally:
        stop_server(process)
    assert process.returncode == 0, server.log()
    assert not list(prom_dir.glob("*.db"))  # cleaned on the way out


def test_llm_calls_tokens_and_readiness(tmp_path: Path, embedder: LocalEmbedder) -> None:
    with FakeOpenAI() as llm:
        settings = load_settings(
            data_dir=tmp_path,
            inprocess_worker=False,
            llm_base_url=llm.base_url,
            llm_model="fake-model",
            llm_max_retries=0,
        )
        container = Container(settings, embedder=embedder)
        with TestClient(create_app(settings, container=container), client=LOOPBACK_CLIENT) as c:
            cid = c.post("/v1/collections", json={"name": "kb"}).json()["id"]
            c.post(f"/v1/collections/{cid}/documents", json={"text": "Owls hunt at night."})
            container.new_worker().run_until_idle()
            before = scrape(c)
            llm.reply("Owls hunt at night [1].")
            assert c.post("/v1/ask", json={"question": "When do owls hunt?"}).status_code == 200
            after = scrape(c)

            def delta(name: str, **labels: str) -> float:
                return value(after, name, **labels) - value(before, name, **labels)

            count = "ragd_llm_request_duration_seconds_count"
            assert delta(count, operation="generate", outcome="ok") == 1
            assert delta("ragd_llm_tokens_total", model="fake-model", type="prompt") > 0
            assert delta("ragd_llm_tokens_total", model="fake-model", type="completion") > 0

            ready = c.get("/readyz").json()["checks"]["llm"]
            assert (ready["status"], ready["required"]) == ("ok", False)
    container.close()
    # The LLM gone: reported, but search still works, so the server stays ready.
    container = Container(settings, embedder=embedder)
    with TestClient(create_app(settings, container=container), client=LOOPBACK_CLIENT) as c:
        response = c.get("/readyz")
        assert response.status_code == 200
        assert response.json()["checks"]["llm"]["status"] == "fail"
    container.close()
