"""Security headers, CORS allow-list, trusted hosts, and no stack traces on a 500."""

from __future__ import annotations

import json
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
from tests.helpers import LOOPBACK_CLIENT, LiveServer


@contextmanager
def _client(
    tmp_path: Path, embedder: LocalEmbedder, *, base_url: str = "http://testserver", **kw: Any
) -> Iterator[TestClient]:
    settings = load_settings(data_dir=tmp_path, inprocess_worker=False, log_format="json", **kw)
    container = Container(settings, embedder=embedder)
    app = create_app(settings, container=container)
    try:
        with TestClient(app, base_url=base_url, client=LOOPBACK_CLIENT) as client:
            yield client
    finally:
        container.close()


def test_every_response_has_security_headers(client: TestClient) -> None:
    for response in (
        client.get("/v1/collections"),
        client.get("/livez"),
        client.get("/v1/documents/missing"),
        client.post(
            "/v1/search", content=b"{not json", headers={"content-type": "application/json"}
        ),
    ):
        headers = response.headers
        assert headers["x-content-type-options"] == "nosniff"
        assert headers["x-frame-options"] == "DENY"
        assert headers["referrer-policy"] == "no-referrer"
        assert "frame-ancestors 'none'" in headers["content-security-policy"]
        assert "cdn.jsdelivr.net" not in headers["content-security-policy"]
        assert "strict-transport-security" not in headers  # plain http
        assert "server" not in headers


def test_docs_page_csp_allows_its_cdn(client: TestClient) -> None:
    docs = client.get("/docs")
    assert docs.status_code == 200
    csp = docs.headers["content-security-policy"]
    assert "script-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net" in csp
    assert "https://cdn.jsdelivr.net" in docs.text  # what the page loads is allowed


def test_hsts_over_https(tmp_path: Path, embedder: LocalEmbedder) -> None:
    with _client(tmp_path, embedder, base_url="https://testserver") as client:
        hsts = client.get("/livez").headers["strict-transport-security"]
        assert hsts.startswith("max-age=")


def test_hsts_behind_a_trusted_proxy(live_server: LiveServer) -> None:
    # The test talks from 127.0.0.1, which RAGD_FORWARDED_ALLOW_IPS trusts by default.
    proxied = httpx.get(f"{live_server.base_url}/livez", headers={"X-Forwarded-Proto": "https"})
    assert "max-age=" in proxied.headers["strict-transport-security"]
    direct = httpx.get(f"{live_server.base_url}/livez")
    assert "strict-transport-security" not in direct.headers
    assert "server" not in direct.headers


def test_cors_preflight_allowed_and_denied(tmp_path: Path, embedder: LocalEmbedder) -> None:
    allowed = "https://app.example.com"
    with _client(tmp_path, embedder, cors_origins=allowed) as client:
        preflight = client.options(
            "/v1/search",
            headers={
                "Origin": allowed,
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "authorization, content-type",
            },
        )
        assert preflight.status_code == 200
        assert preflight.headers["access-control-allow-origin"] == allowed
        simple = client.get("/v1/collections", headers={"Origin": allowed})
        assert simple.headers["access-control-allow-origin"] == allowed
        assert "X-RateLimit-Remaining" in simple.headers["access-control-expose-headers"]

        denied = client.options(
            "/v1/search",
            headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"},
        )
        assert denied.status_code == 400
        assert "access-control-allow-origin" not in denied.headers
        other = client.get("/v1/collections", headers={"Origin": "https://evil.example"})
        assert "access-control-allow-origin" not in other.headers


def test_no_cors_headers_by_default(client: TestClient) -> None:
    response = client.get("/v1/collections", headers={"Origin": "https://app.example.com"})
    assert response.status_code == 200
    assert "access-control-allow-origin" not in response.headers


def test_untrusted_host_is_400(tmp_path: Path, embedder: LocalEmbedder) -> None:
    with _client(tmp_path, embedder, trusted_hosts="api.example.com,*.internal") as client:
        for host in ("api.example.com", "api.example.com:8443", "ragd.internal"):
            assert client.get("/livez", headers={"Host": host}).status_code == 200, host
        refused = client.get("/v1/collections", headers={"Host": "evil.example"})
        assert refused.status_code == 400
        assert refused.headers["content-type"] == "application/problem+json"
        assert refused.json()["request_id"] == refused.headers["x-request-id"]
        assert refused.headers["x-content-type-options"] == "nosniff"
        assert client.get("/livez", headers={"Host": "internal"}).status_code == 400


def test_unexpected_error_is_500_without_a_stack_trace(
    client: TestClient, container: Container, capsys: pytest.CaptureFixture[str]
) -> None:
    def broken(*_: Any, **__: Any) -> Any:
        raise RuntimeError("secret internal detail 7f3a")

    container.collections.list_all = broken  # type: ignore[method-assign]
    response = client.get("/v1/collections", headers={"X-Request-ID": "boom-1"})
    assert response.status_code == 500
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["x-content-type-options"] == "nosniff"
    body = response.json()
    assert body["request_id"] == "boom-1"
    assert body["detail"] == "an unexpected error occurred"
    assert "7f3a" not in response.text and "Traceback" not in response.text

    logged = [json.loads(line) for line in capsys.readouterr().err.splitlines() if "{" in line]
    error = next(e for e in logged if e.get("event") == "unhandled error")
    assert error["request_id"] == "boom-1"
    assert "RuntimeError: secret internal detail 7f3a" in error["exception"]
    metrics = client.get("/metrics").text
    assert 'route="/v1/collections",status="500"' in metrics
