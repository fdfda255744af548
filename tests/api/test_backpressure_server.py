"""Backpressure in a real ``ragd serve`` with room for one request: a streamed answer
from a slow (fake) LLM holds the slot, a search arriving meanwhile waits
``RAGD_QUEUE_TIMEOUT_MS`` and is shed with a problem+json 503 carrying ``Retry-After``
and a request id, the probes and ``/metrics`` still answer, and the metrics count both.

The slot is held for as long as the test keeps the stream open (the fake LLM would need
a minute to finish), so the 503 does not depend on how fast the machine is."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import httpx
import pytest

from tests.api.llm_server import serving_one_document
from tests.generation.fake_openai import FakeOpenAI
from tests.helpers import LiveServer

BRIDGE = "# Tower Bridge\n\nTower Bridge was completed in 1894. It crosses the River Thames."
DELTAS = [f"word{i} " for i in range(60)]
DELTA_DELAY_S = 1.0  # a minute for the whole reply: the test hangs up long before


@pytest.fixture(scope="module")
def slow_llm() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as server:
        yield server


@pytest.fixture(scope="module")
def ragd(
    tmp_path_factory: pytest.TempPathFactory, slow_llm: FakeOpenAI
) -> Iterator[tuple[LiveServer, str]]:
    with serving_one_document(
        tmp_path_factory.mktemp("backpressure"),
        slow_llm,
        BRIDGE,
        RAGD_MAX_CONCURRENT_REQUESTS="1",
        RAGD_QUEUE_TIMEOUT_MS="300",
    ) as served:
        yield served


def metric(http: httpx.Client, name: str) -> float:
    for line in http.get("/metrics").text.splitlines():
        if line.startswith(f"{name} ") or line.startswith(f"{name}{{"):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"{name} not in /metrics")


def until_in_flight(http: httpx.Client, count: int) -> None:
    """Wait for a state (the slot freed after a hang-up), as wait_for_status does."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if metric(http, "ragd_http_requests_in_flight") == count:
            return
        time.sleep(0.1)
    raise AssertionError(f"in-flight never reached {count}")


def test_a_request_past_the_limit_is_shed_while_probes_and_metrics_answer(
    ragd: tuple[LiveServer, str], slow_llm: FakeOpenAI
) -> None:
    server, cid = ragd
    slow_llm.reply("".join(DELTAS), deltas=DELTAS, delta_delay_s=DELTA_DELAY_S)
    body = {"question": "When was Tower Bridge completed?", "collections": [cid], "stream": True}
    with httpx.Client(base_url=server.base_url, timeout=30) as http:
        until_in_flight(http, 0)
        shed_before = metric(http, "ragd_http_requests_shed_total")
        with http.stream("POST", "/v1/ask", json=body) as stream:
            assert stream.status_code == 200
            lines = stream.iter_lines()
            assert any(line.startswith("data:") and "word0" in line for line in lines)

            # The stream holds the only slot until it is done.
            assert metric(http, "ragd_http_requests_in_flight") == 1
            shed = http.post(
                "/v1/search",
                json={"query": "Tower Bridge", "collections": [cid]},
                headers={"X-Request-ID": "shed-me-1"},
            )
            assert shed.status_code == 503, shed.text
            assert shed.headers["content-type"] == "application/problem+json"
            assert shed.headers["retry-after"] == "1"
            assert shed.headers["x-request-id"] == "shed-me-1"
            problem = shed.json()
            assert problem["title"] == "Service Unavailable" and problem["status"] == 503
            assert problem["request_id"] == "shed-me-1"

            assert http.get("/livez").status_code == 200
            assert http.get("/readyz").status_code == 200
            assert metric(http, "ragd_http_requests_in_flight") == 1
            assert metric(http, "ragd_http_requests_shed_total") == shed_before + 1
        # The client hung up: the stream ends and gives its slot back.
        until_in_flight(http, 0)
        found = http.post("/v1/search", json={"query": "Tower Bridge", "collections": [cid]})
        assert found.status_code == 200, found.text

    access = [json.loads(line) for line in server.log().splitlines() if line.startswith("{")]
    shed_lines = [
        entry
        for entry in access
        if entry.get("event") == "request" and entry.get("request_id") == "shed-me-1"
    ]
    assert [entry["status"] for entry in shed_lines] == [503]
