"""Sentry and OpenTelemetry: absent unless configured, a clear stop when configured but
not installed, and real reports to a local collector when on."""

from __future__ import annotations

import gzip
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from ragd.api.app import create_app
from ragd.cli.app import app as cli_app
from ragd.config import load_settings
from ragd.errors import InvalidInput
from tests.helpers import start_server, stop_server


@dataclass
class Collector:
    """A local HTTP endpoint that records every POST (path, decompressed body)."""

    base_url: str = ""
    posts: list[tuple[str, bytes]] = field(default_factory=list)


@pytest.fixture
def collector() -> Iterator[Collector]:
    found = Collector()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length") or 0))
            if self.headers.get("content-encoding") == "gzip":
                body = gzip.decompress(body)
            found.posts.append((self.path, body))
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", "2")
            self.end_headers()
            self.wfile.write(b"{}")

        def log_message(self, *_: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    found.base_url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield found
    finally:
        server.shutdown()
        server.server_close()


def _python(code: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        check=False,
    )


def test_nothing_is_imported_when_unset(tmp_path: Path) -> None:
    result = _python(
        f"""
        import sys
        from ragd.api.app import create_app
        from ragd.config import load_settings
        create_app(load_settings(data_dir={str(tmp_path)!r}))
        loaded = [m for m in sys.modules
                  if m.startswith(("sentry_sdk", "opentelemetry.sdk",
                                   "opentelemetry.instrumentation", "opentelemetry.exporter"))]
        print(loaded)
        """
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


@pytest.mark.parametrize(
    ("setting", "module", "package"),
    [
        ({"sentry_dsn": "https://public@sentry.example/1"}, "sentry_sdk", "sentry-sdk"),
        (
            {"otel_endpoint": "http://collector:4318"},
            "opentelemetry.sdk.trace",
            "OpenTelemetry SDK",
        ),
    ],
)
def test_configured_but_not_installed_stops_start_up(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    setting: dict[str, str],
    module: str,
    package: str,
) -> None:
    monkeypatch.setitem(sys.modules, module, None)  # what an absent package looks like
    settings = load_settings(data_dir=tmp_path, **setting)
    with pytest.raises(InvalidInput) as raised:
        create_app(settings)
    assert package in raised.value.detail
    assert "pip install 'ragd[observability]'" in raised.value.detail

    env = {"RAGD_DATA_DIR": str(tmp_path), **{f"RAGD_{k.upper()}": v for k, v in setting.items()}}
    result = CliRunner().invoke(cli_app, ["serve"], env=env)
    assert result.exit_code == 2
    assert "ragd[observability]" in result.output


def test_traces_reach_the_otlp_collector(tmp_path: Path, collector: Collector) -> None:
    process, server = start_server(tmp_path, RAGD_OTEL_ENDPOINT=collector.base_url)
    try:
        response = httpx.get(f"{server.base_url}/v1/collections", timeout=10)
        assert response.status_code == 200
    finally:
        stop_server(process)  # shutdown flushes the batch of spans
    traces = [body for path, body in collector.posts if path == "/v1/traces"]
    assert traces, server.log()
    exported = b"".join(traces)
    assert b"/v1/collections" in exported
    assert b"/readyz" not in exported  # probes are not traced


def test_unhandled_errors_reach_sentry_without_secrets(
    tmp_path: Path, collector: Collector
) -> None:
    dsn = collector.base_url.replace("http://", "http://publickey@") + "/42"
    result = _python(
        f"""
        from fastapi.testclient import TestClient
        from ragd.api.app import create_app
        from ragd.config import load_settings
        from ragd.container import Container

        settings = load_settings(data_dir={str(tmp_path)!r}, sentry_dsn={dsn!r},
                                 inprocess_worker=False, auth_disabled=True)
        container = Container(settings)
        def broken(*args, **kwargs):
            raise RuntimeError("sentry test failure")
        container.collections.list_all = broken
        with TestClient(create_app(settings, container=container)) as client:
            response = client.get("/v1/collections",
                                  headers={{"Authorization": "Bearer top-secret-token"}})
            assert response.status_code == 500, response.text
        container.close()
        """,
        env={"HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin"},
    )
    assert result.returncode == 0, result.stderr
    envelopes = [body for path, body in collector.posts if path.startswith("/api/42/")]
    assert envelopes, collector.posts
    reported = b"".join(envelopes)
    assert b"sentry test failure" in reported
    assert b"top-secret-token" not in reported
