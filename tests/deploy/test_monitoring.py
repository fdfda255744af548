"""The Prometheus alert rules and the Grafana dashboard in deploy/, checked against the
tools and against ragd itself.

``promtool`` (Debian's ``prometheus`` package; ``make install-test`` installs it) checks
the rules and runs their unit tests, and checks every dashboard query as PromQL too. Then a
real ``ragd serve`` process gets traffic of every kind the rules watch (requests, a
failed and a ready document, searches, an LLM answer, refused credentials, a 429, a
readiness probe), and every metric name, label and exact label value the rules and the
dashboard use must be in its ``/metrics`` output: a renamed metric cannot leave an alert
silently watching nothing.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml  # type: ignore[import-untyped]
from prometheus_client.parser import text_string_to_metric_families

from ragd.auth import generate_key
from tests.databases import unavailable
from tests.generation.fake_openai import FakeOpenAI
from tests.helpers import LiveServer, start_server, stop_server, wait_for_status

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "deploy" / "prometheus" / "ragd-alerts.yaml"
RULE_TESTS = ROOT / "deploy" / "prometheus" / "ragd-alerts.test.yaml"
DASHBOARD = ROOT / "deploy" / "grafana" / "ragd-dashboard.json"
PROMETHEUS_CONFIG = ROOT / "deploy" / "prometheus" / "prometheus.example.yaml"

# Labels Prometheus adds (target labels) or that histograms carry: not ragd's to export.
TARGET_LABELS = {"instance", "job", "le"}
_SELECTOR = re.compile(r"\b(ragd_[a-z0-9_]+)\s*(\{[^}]*\})?")
_MATCHER = re.compile(r'(\w+)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"')
_BY = re.compile(r"\b(?:by|without)\s*\(([^)]*)\)")


def promtool() -> str:
    binary = shutil.which("promtool")
    if binary is None:
        unavailable("promtool is not installed (apt-get install prometheus; make install-test)")
        raise AssertionError("unreachable")
    return binary


def rules() -> list[dict[str, Any]]:
    data = yaml.safe_load(RULES.read_text(encoding="utf-8"))
    return [rule for group in data["groups"] for rule in group["rules"]]


def dashboard() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    return data


def dashboard_exprs() -> list[str]:
    return [t["expr"] for p in dashboard()["panels"] for t in p.get("targets", [])]


def all_exprs() -> list[str]:
    return [rule["expr"] for rule in rules()] + dashboard_exprs()


def run(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, cwd=cwd, timeout=120, check=False)


# -- the files themselves ---------------------------------------------------------------


def test_promtool_checks_the_rules() -> None:
    result = run([promtool(), "check", "rules", str(RULES)], ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(rules())} rules found" in result.stdout


def test_promtool_unit_tests_of_the_alerts_pass() -> None:
    result = run([promtool(), "test", "rules", RULE_TESTS.name], RULE_TESTS.parent)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_the_example_prometheus_config_is_valid_and_loads_the_rules() -> None:
    result = run([promtool(), "check", "config", PROMETHEUS_CONFIG.name], PROMETHEUS_CONFIG.parent)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(rules())} rules found" in result.stdout


def test_the_example_scrapes_what_the_deployments_serve() -> None:
    """The worker's metrics port and the API port agree across compose.yaml, the
    Kubernetes annotations and the example scrape jobs."""
    config = yaml.safe_load(PROMETHEUS_CONFIG.read_text(encoding="utf-8"))
    ports = {job["job_name"]: job["dns_sd_configs"][0]["port"] for job in config["scrape_configs"]}
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text(encoding="utf-8"))
    worker = compose["services"]["worker"]["command"]
    assert ports["ragd-worker"] == int(worker[worker.index("--metrics-port") + 1])
    assert worker[worker.index("--metrics-host") + 1] == "0.0.0.0"
    assert ports["ragd-api"] == 8000
    for name, port in (("deployment-worker.yaml", 9100), ("deployment-api.yaml", 8000)):
        pod = yaml.safe_load((ROOT / "deploy" / "k8s" / name).read_text(encoding="utf-8"))
        annotations = pod["spec"]["template"]["metadata"]["annotations"]
        assert annotations["prometheus.io/scrape"] == "true"
        assert annotations["prometheus.io/port"] == str(port), name


def test_dashboard_queries_are_valid_promql(tmp_path: Path) -> None:
    """Each panel query as a recording rule, so promtool parses it; Grafana's
    ``$__rate_interval`` becomes a plain range."""
    recorded = [
        {"record": f"ragd:dashboard_query_{i}", "expr": expr.replace("$__rate_interval", "5m")}
        for i, expr in enumerate(dashboard_exprs())
    ]
    path = tmp_path / "dashboard-queries.yaml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": recorded}]}))
    result = run([promtool(), "check", "rules", str(path)], tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_promised_alerts_exist() -> None:
    """The issue's list: error rate, p99 latency, readiness, queue depth and oldest job
    age, failed documents, database retries, rate-limit rejections, worker absent."""
    by_name = {rule["alert"]: rule for rule in rules()}
    watched = {
        "RagdHighErrorRate": "ragd_http_requests_total",
        "RagdHighLatencyP99": "ragd_http_request_duration_seconds_bucket",
        "RagdNotReady": "ragd_readiness_check_success",
        "RagdIngestQueueBacklog": "ragd_ingest_queue_depth",
        "RagdIngestQueueStalled": "ragd_ingest_oldest_queued_age_seconds",
        "RagdDocumentsFailing": "ragd_ingest_documents_total",
        "RagdDatabaseRetries": "ragd_database_retries_total",
        "RagdRateLimitRejections": "ragd_rate_limit_rejections_total",
        "RagdWorkerAbsent": "ragd_worker_heartbeat_timestamp_seconds",
    }
    for alert, metric in watched.items():
        assert alert in by_name, f"missing alert {alert}"
        assert metric in by_name[alert]["expr"], (alert, metric)
    for rule in rules():
        assert rule["labels"]["severity"] in ("critical", "warning", "info"), rule["alert"]
        assert rule["annotations"]["summary"] and rule["annotations"]["description"]


def test_dashboard_is_importable_grafana_json() -> None:
    data = dashboard()
    assert data["uid"] and data["title"] and data["schemaVersion"] >= 36
    variables = {v["name"]: v for v in data["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    ids = [p["id"] for p in data["panels"]]
    assert len(ids) == len(set(ids)), "panel ids are unique"
    for panel in data["panels"]:
        if panel["type"] == "row":
            continue
        assert panel["targets"], panel["title"]
        assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
        assert panel["gridPos"]["x"] >= 0 and panel["gridPos"]["x"] + panel["gridPos"]["w"] <= 24


# -- against a real server's /metrics ---------------------------------------------------


Scraped = dict[str, list[dict[str, str]]]


@pytest.fixture(scope="module")
def scraped(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scraped]:
    """Sample name -> the label sets of its samples, after traffic of every kind."""
    _, admin_key = generate_key()
    with FakeOpenAI() as llm:
        process, server = start_server(
            tmp_path_factory.mktemp("monitoring"),
            RAGD_ADMIN_KEY=admin_key,
            RAGD_LLM_BASE_URL=llm.base_url,
            RAGD_LLM_MODEL="fake-model",
            RAGD_RATE_LIMIT_ENABLED="true",
            RAGD_RATE_LIMIT="100000/minute",
            RAGD_INGEST_RATE_LIMIT="2/hour",
            RAGD_RATE_LIMIT_ADMIN="true",
        )
        try:
            traffic(server, admin_key, llm)
            with httpx.Client(base_url=server.base_url, timeout=30) as http:
                response = http.get("/metrics")
            assert response.status_code == 200, response.text
        finally:
            stop_server(process)
    samples: Scraped = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples.setdefault(sample.name, []).append(dict(sample.labels))
    yield samples


def traffic(server: LiveServer, admin_key: str, llm: FakeOpenAI) -> None:
    headers = {"Authorization": f"Bearer {admin_key}"}
    with httpx.Client(base_url=server.base_url, headers=headers, timeout=60) as http:
        cid = http.post("/v1/collections", json={"name": "ops"}).json()["id"]
        text = "# Tides\n\nThe moon's gravity raises the tides twice a day."
        good = http.post(f"/v1/collections/{cid}/documents", json={"text": text})
        assert good.status_code == 202, good.text
        corrupt = http.post(
            f"/v1/collections/{cid}/documents",
            files={"file": ("broken.pdf", b"%PDF-1.7\nnot really a pdf", "application/pdf")},
        )
        assert corrupt.status_code == 202, corrupt.text
        refused = http.post(f"/v1/collections/{cid}/documents", json={"text": "third"})
        assert refused.status_code == 429, refused.text  # the ingest budget is 2/hour
        wait_for_status(http, good.headers["location"], "ready")
        wait_for_status(http, corrupt.headers["location"], "failed")
        for mode in ("keyword", "vector", "hybrid"):
            found = http.post("/v1/search", json={"query": "tides", "mode": mode})
            assert found.status_code == 200, found.text
        llm.reply("The moon raises the tides [1].")
        answer = http.post("/v1/ask", json={"question": "What raises the tides?"})
        assert answer.status_code == 200, answer.text
        assert http.get("/v1/documents/no-such-document").status_code == 404
        assert http.get("/readyz").status_code == 200
    bad = httpx.get(
        f"{server.base_url}/v1/collections",
        headers={"Authorization": "Bearer rgd_nosuch_" + "x" * 40},
        timeout=30,
    )
    assert bad.status_code == 401


def selectors(expr: str) -> Iterator[tuple[str, list[tuple[str, str, str]]]]:
    for match in _SELECTOR.finditer(expr):
        name, braces = match.group(1), match.group(2) or ""
        yield name, _MATCHER.findall(braces)


def test_every_metric_the_rules_and_dashboard_use_is_exported(scraped: Scraped) -> None:
    used = {name for expr in all_exprs() for name, _ in selectors(expr)}
    assert len(used) >= 15, sorted(used)
    missing = sorted(used - set(scraped))
    assert not missing, f"not in /metrics after traffic: {missing}"


def test_every_label_and_exact_value_they_match_on_is_exported(scraped: Scraped) -> None:
    problems = []
    for expr in all_exprs():
        names = [name for name, _ in selectors(expr)]
        for name, matchers in selectors(expr):
            series = scraped.get(name, [])
            for label, op, value in matchers:
                if not any(label in labels for labels in series):
                    problems.append(f"{name} has no label {label!r}")
                elif op == "=" and not any(labels.get(label) == value for labels in series):
                    problems.append(f"{name} has no series with {label}={value!r}")
                elif op == "=~":
                    pattern = re.compile(value.replace("\\\\", "\\"))
                    if not any(pattern.fullmatch(labels.get(label, "")) for labels in series):
                        problems.append(f"{name}: no {label} matches {value!r}")
        for group in _BY.findall(expr):
            for label in (part.strip() for part in group.split(",")):
                if (
                    label
                    and label not in TARGET_LABELS
                    and not any(
                        label in labels for name in names for labels in scraped.get(name, [])
                    )
                ):
                    problems.append(f"grouped by {label!r}, which none of {names} has")
    assert not problems, "\n".join(sorted(set(problems)))
