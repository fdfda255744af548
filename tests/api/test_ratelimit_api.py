"""Rate limits: 429 with Retry-After, X-RateLimit-* headers, exempt probes, a separate
ingestion budget, Redis shared by two server processes, and a Redis outage."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from ragd.api.app import create_app
from ragd.config import load_settings
from ragd.container import Container
from ragd.embedding import LocalEmbedder
from tests.helpers import LOOPBACK_CLIENT, free_port, start_server, stop_server


@contextmanager
def _client(tmp_path: Path, embedder: LocalEmbedder, **overrides: Any) -> Iterator[TestClient]:
    """A loopback client. Most tests spend budgets as the keyless loopback caller, which
    is only limited with ``rate_limit_admin`` (on here unless a test says otherwise)."""
    overrides.setdefault("rate_limit_admin", True)
    settings = load_settings(
        data_dir=tmp_path, inprocess_worker=False, log_format="json", **overrides
    )
    container = Container(settings, embedder=embedder)
    try:
        with TestClient(create_app(settings, container=container), client=LOOPBACK_CLIENT) as c:
            yield c
    finally:
        container.close()


def _unique_prefix() -> str:
    return f"ragd-test-{uuid.uuid4().hex[:12]}"


def test_over_the_limit_is_429_with_retry_after(tmp_path: Path, embedder: LocalEmbedder) -> None:
    with _client(tmp_path, embedder, rate_limit="3/hour;100/day") as client:
        for remaining in (2, 1, 0):
            response = client.get("/v1/collections")
            assert response.status_code == 200
            assert response.headers["x-ratelimit-limit"] == "3"
            assert response.headers["x-ratelimit-remaining"] == str(remaining)
            assert 1 <= int(response.headers["x-ratelimit-reset"]) <= 3600

        refused = client.get("/v1/collections")
        assert refused.status_code == 429
        assert refused.headers["content-type"] == "application/problem+json"
        assert 1 <= int(refused.headers["retry-after"]) <= 3600
        assert refused.headers["x-ratelimit-remaining"] == "0"
        body = refused.json()
        assert body["title"] == "Too Many Requests"
        assert body["status"] == 429
        assert body["request_id"] == refused.headers["x-request-id"]
        assert "3 per 1 hour" in body["detail"]


def test_probes_docs_and_metrics_are_exempt(tmp_path: Path, embedder: LocalEmbedder) -> None:
    with _client(tmp_path, embedder, rate_limit="1/hour", metrics_allow="127.0.0.1") as client:
        assert client.get("/v1/collections").status_code == 200
        assert client.get("/v1/collections").status_code == 429
        for path in ("/livez", "/readyz", "/metrics", "/docs", "/openapi.json"):
            for _ in range(3):
                response = client.get(path)
                assert response.status_code == 200, path
                assert "x-ratelimit-limit" not in response.headers, path


def test_a_key_has_its_own_budget(tmp_path: Path, embedder: LocalEmbedder) -> None:
    with _client(tmp_path, embedder, rate_limit="2/hour") as client:
        container: Container = client.app.state.container  # type: ignore[attr-defined]
        key = container.keys.create("limited", "read", None).secret
        auth = {"Authorization": f"Bearer {key}"}
        assert [client.get("/v1/collections", headers=auth).status_code for _ in range(3)] == [
            200,
            200,
            429,
        ]
        # The same address with another key (a fresh budget) is still served.
        other = container.keys.create("other", "read", None).secret
        response = client.get("/v1/collections", headers={"X-API-Key": other})
        assert response.status_code == 200
        assert response.headers["x-ratelimit-remaining"] == "1"


def test_ingestion_has_a_budget_of_its_own(tmp_path: Path, embedder: LocalEmbedder) -> None:
    with _client(tmp_path, embedder, rate_limit="5/hour", ingest_rate_limit="2/hour") as client:
        cid = client.post("/v1/collections", json={"name": "kb"}).json()["id"]
        statuses = [
            client.post(f"/v1/collections/{cid}/documents", json={"text": f"note {i}"})
            for i in range(3)
        ]
        assert [r.status_code for r in statuses] == [202, 202, 429]
        assert statuses[0].headers["x-ratelimit-limit"] == "2"
        # Uploads did not spend the general budget: one request (the create) so far.
        listed = client.get("/v1/collections")
        assert listed.status_code == 200
        assert listed.headers["x-ratelimit-remaining"] == "3"


def test_disabled_limits_send_no_headers(tmp_path: Path, embedder: LocalEmbedder) -> None:
    with _client(tmp_path, embedder, rate_limit="1/hour", rate_limit_enabled=False) as client:
        for _ in range(3):
            response = client.get("/v1/collections")
            assert response.status_code == 200
            assert "x-ratelimit-limit" not in response.headers


def test_redis_counts_and_readyz_reports_it(
    tmp_path: Path, embedder: LocalEmbedder, redis_url: str
) -> None:
    with _client(
        tmp_path,
        embedder,
        redis_url=redis_url,
        rate_limit="2/hour",
        rate_limit_key_prefix=_unique_prefix(),
    ) as client:
        assert [client.get("/v1/collections").status_code for _ in range(3)] == [200, 200, 429]
        ready = client.get("/readyz").json()
        assert ready["checks"]["redis"]["status"] == "ok"
        assert ready["checks"]["redis"]["required"] is False  # fails open by default


def test_redis_down_fails_open_by_default(tmp_path: Path, embedder: LocalEmbedder) -> None:
    closed = f"redis://127.0.0.1:{free_port()}/0"
    with _client(tmp_path, embedder, redis_url=closed, rate_limit="1/hour") as client:
        for _ in range(3):
            response = client.get("/v1/collections")
            assert response.status_code == 200
            assert "x-ratelimit-limit" not in response.headers
        ready = client.get("/readyz")
        assert ready.status_code == 200
        check = ready.json()["checks"]["redis"]
        assert check["status"] == "fail"
        assert check["required"] is False


def test_redis_down_fails_closed_when_configured(tmp_path: Path, embedder: LocalEmbedder) -> None:
    closed = f"redis://127.0.0.1:{free_port()}/0"
    with _client(tmp_path, embedder, redis_url=closed, rate_limit_fail_open=False) as client:
        refused = client.get("/v1/collections")
        assert refused.status_code == 503
        assert refused.headers["content-type"] == "application/problem+json"
        assert "retry-after" in refused.headers
        assert "rate limit" in refused.json()["detail"]
        assert client.get("/livez").status_code == 200
        ready = client.get("/readyz")
        assert ready.status_code == 503
        check = ready.json()["checks"]["redis"]
        assert check["status"] == "fail"
        assert check["required"] is True


def test_two_server_processes_share_one_budget_in_redis(tmp_path: Path, redis_url: str) -> None:
    env = {
        "RAGD_REDIS_URL": redis_url,
        "RAGD_RATE_LIMIT_ENABLED": "true",
        "RAGD_RATE_LIMIT": "4/hour",
        "RAGD_RATE_LIMIT_ADMIN": "true",
        "RAGD_RATE_LIMIT_KEY_PREFIX": _unique_prefix(),
        "RAGD_INPROCESS_WORKER": "false",
    }
    first, one = start_server(tmp_path, **env)
    try:
        second, two = start_server(tmp_path, **env)
        try:
            remaining = []
            for base in (one.base_url, two.base_url) * 2:
                response = httpx.get(f"{base}/v1/collections", timeout=10)
                assert response.status_code == 200, response.text
                remaining.append(response.headers["x-ratelimit-remaining"])
            assert remaining == ["3", "2", "1", "0"]
            for base in (one.base_url, two.base_url):
                refused = httpx.get(f"{base}/v1/collections", timeout=10)
                assert refused.status_code == 429
                assert int(refused.headers["retry-after"]) >= 1
        finally:
            stop_server(second)
    finally:
        stop_server(first)


def test_failed_key_guesses_spend_the_address_budget(
    tmp_path: Path, embedder: LocalEmbedder
) -> None:
    """Key guessing is throttled per address, and every refusal is counted in /metrics."""
    with _client(
        tmp_path, embedder, rate_limit="3/hour;100/day", admin_key=f"rgd_Boot1234_{'s' * 43}"
    ) as client:
        bad = {"Authorization": "Bearer rgd_Nope1234_" + "x" * 43}
        statuses = [client.get("/v1/collections", headers=bad).status_code for _ in range(5)]
        assert statuses[:3] == [401, 401, 401]
        assert statuses[3:] == [429, 429]
        metrics = client.get("/metrics").text
        invalid = [
            line
            for line in metrics.splitlines()
            if line.startswith('ragd_auth_failures_total{reason="invalid"}')
        ]
        assert invalid and float(invalid[0].split()[-1]) >= 3


def test_admin_keys_and_keyless_loopback_are_not_limited_by_default(
    tmp_path: Path, embedder: LocalEmbedder
) -> None:
    """The operator's own bulk work is never throttled unless RAGD_RATE_LIMIT_ADMIN."""
    with _client(
        tmp_path,
        embedder,
        rate_limit="2/hour",
        ingest_rate_limit="2/hour",
        ingest_documents_rate_limit="2/hour",
        rate_limit_admin=False,
    ) as client:
        # Keyless loopback mode: no key exists yet.
        cid = client.post("/v1/collections", json={"name": "kb"}).json()["id"]
        for i in range(4):
            response = client.post(f"/v1/collections/{cid}/documents", json={"text": f"n {i}"})
            assert response.status_code == 202
            assert "x-ratelimit-limit" not in response.headers
        container: Container = client.app.state.container  # type: ignore[attr-defined]
        admin = {"X-API-Key": container.keys.create("admin", "admin", None).secret}
        assert [client.get("/v1/collections", headers=admin).status_code for _ in range(4)] == [
            200
        ] * 4
        # Keys below admin spend their budgets as before.
        write = {"X-API-Key": container.keys.create("w", "write", None).secret}
        assert [client.get("/v1/collections", headers=write).status_code for _ in range(3)] == [
            200,
            200,
            429,
        ]


def test_rate_limit_admin_limits_admin_keys(tmp_path: Path, embedder: LocalEmbedder) -> None:
    with _client(tmp_path, embedder, rate_limit="2/hour", rate_limit_admin=True) as client:
        container: Container = client.app.state.container  # type: ignore[attr-defined]
        admin = {"X-API-Key": container.keys.create("admin", "admin", None).secret}
        statuses = [client.get("/v1/collections", headers=admin).status_code for _ in range(3)]
        assert statuses == [200, 200, 429]


def test_auth_disabled_callers_stay_limited_by_address(
    tmp_path: Path, embedder: LocalEmbedder
) -> None:
    """With auth off every caller is an anonymous admin: not the owner's loopback mode."""
    with _client(
        tmp_path, embedder, rate_limit="2/hour", auth_disabled=True, rate_limit_admin=False
    ) as client:
        assert [client.get("/v1/collections").status_code for _ in range(3)] == [200, 200, 429]


def test_single_uploads_spend_the_documents_budget(tmp_path: Path, embedder: LocalEmbedder) -> None:
    with _client(
        tmp_path, embedder, ingest_rate_limit="100/hour", ingest_documents_rate_limit="2/hour"
    ) as client:
        cid = client.post("/v1/collections", json={"name": "kb"}).json()["id"]
        statuses = [
            client.post(f"/v1/collections/{cid}/documents", json={"text": f"note {i}"})
            for i in range(3)
        ]
        assert [r.status_code for r in statuses] == [202, 202, 429]
        assert statuses[1].headers["x-ratelimit-documents-remaining"] == "0"
        refused = statuses[2]
        assert int(refused.headers["retry-after"]) >= 1
        assert "documents budget of 2 per 1 hour" in refused.json()["detail"]
        listed = client.get(f"/v1/collections/{cid}/documents").json()["documents"]
        assert len(listed) == 2  # the refused one was not written


NDJSON = {"content-type": "application/x-ndjson"}


def _ndjson(count: int, tag: str) -> dict[str, Any]:
    """``content=`` for a batch of ``count`` text lines (post with ``headers=NDJSON``)."""
    lines = "\n".join(f'{{"text": "note {tag} {i}"}}' for i in range(count))
    return {"content": lines.encode()}


@pytest.mark.parametrize("storage", ["memory", "redis"])
def test_a_batch_is_one_request_and_a_document_per_item(
    tmp_path: Path, embedder: LocalEmbedder, request: pytest.FixtureRequest, storage: str
) -> None:
    shared: dict[str, Any] = {}
    if storage == "redis":
        shared = {
            "redis_url": request.getfixturevalue("redis_url"),
            "rate_limit_key_prefix": _unique_prefix(),
        }
    with _client(
        tmp_path,
        embedder,
        ingest_rate_limit="3/hour",
        ingest_documents_rate_limit="5/hour",
        rate_limit_admin=False,
        **shared,
    ) as client:
        cid = client.post("/v1/collections", json={"name": "kb"}).json()["id"]
        path = f"/v1/collections/{cid}/documents:batch"
        container: Container = client.app.state.container  # type: ignore[attr-defined]
        key = {"X-API-Key": container.keys.create("w", "write", None).secret}

        first = client.post(path, **_ndjson(3, "a"), headers={**key, **NDJSON})
        assert first.status_code == 200, first.text
        assert first.headers["x-ratelimit-limit"] == "3"  # the request budget: one spent
        assert first.headers["x-ratelimit-remaining"] == "2"
        assert first.headers["x-ratelimit-documents-remaining"] == "2"

        refused = client.post(path, **_ndjson(3, "b"), headers={**key, **NDJSON})
        assert refused.status_code == 429
        assert refused.headers["content-type"] == "application/problem+json"
        assert 1 <= int(refused.headers["retry-after"]) <= 3600
        detail = refused.json()["detail"]
        assert "documents budget of 5 per 1 hour exceeded: this request adds 3, 2 remain" in detail
        listed = client.get(f"/v1/collections/{cid}/documents", headers=key).json()
        assert len(listed["documents"]) == 3  # nothing of the refused batch

        # The refused batch spent no documents, so two still fit.
        fits = client.post(path, **_ndjson(2, "c"), headers={**key, **NDJSON})
        assert fits.status_code == 200, fits.text
        assert fits.headers["x-ratelimit-documents-remaining"] == "0"
        # Three document POSTs: the request budget is spent too.
        over = client.post(path, **_ndjson(1, "d"), headers={**key, **NDJSON})
        assert over.status_code == 429
        assert "rate limit of 3 per 1 hour" in over.json()["detail"]

        # A batch no window could ever hold is a 413: waiting would not help.
        other = {"X-API-Key": container.keys.create("w2", "write", None).secret}
        whole = client.post(path, **_ndjson(6, "e"), headers={**other, **NDJSON})
        assert whole.status_code == 413
        assert "smaller batches" in whole.json()["detail"]

        # The keyless loopback mode is gone once keys exist; an admin key is unlimited.
        admin = {"X-API-Key": container.keys.create("a", "admin", None).secret}
        for tag in ("f", "g", "h", "i"):
            response = client.post(path, **_ndjson(4, tag), headers={**admin, **NDJSON})
            assert response.status_code == 200, response.text
            assert "x-ratelimit-documents-remaining" not in response.headers


def test_keyless_loopback_batches_are_not_limited(tmp_path: Path, embedder: LocalEmbedder) -> None:
    with _client(
        tmp_path,
        embedder,
        ingest_rate_limit="1/hour",
        ingest_documents_rate_limit="2/hour",
        rate_limit_admin=False,
    ) as client:
        cid = client.post("/v1/collections", json={"name": "kb"}).json()["id"]
        for tag in ("a", "b", "c"):
            response = client.post(
                f"/v1/collections/{cid}/documents:batch", **_ndjson(5, tag), headers=NDJSON
            )
            assert response.status_code == 200, response.text
            assert response.json()["created"] == 5
