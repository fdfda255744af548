"""/v1/ask with "stream": true: Server-Sent Events, with and without an LLM."""

from __future__ import annotations

import json
from typing import Any

from fastapi.testclient import TestClient

from ragd.container import Container
from tests.api.conftest import LLM_SECRET as SECRET
from tests.api.conftest import Drain
from tests.generation.fake_openai import FakeOpenAI
from tests.helpers import parse_sse

BRIDGE = "# Tower Bridge\n\nTower Bridge was completed in 1894. It crosses the Thames."


def events_of(response: Any) -> list[tuple[str | None, Any]]:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/event-stream")
    return [(name, json.loads(data)) for name, data in parse_sse(response.text)]


def seed(client: TestClient, drain: Any) -> tuple[str, str]:
    cid = client.post("/v1/collections", json={"name": "kb"}).json()["id"]
    doc = client.post(f"/v1/collections/{cid}/documents", json={"text": BRIDGE}).json()
    drain()
    return cid, doc["id"]


def test_extractive_stream_matches_the_plain_answer(client: TestClient, drain: Drain) -> None:
    cid, doc_id = seed(client, drain)
    question = {"question": "When was Tower Bridge completed?", "collections": [cid]}
    plain = client.post("/v1/ask", json=question).json()

    events = events_of(client.post("/v1/ask", json={**question, "stream": True}))

    names = [name for name, _ in events]
    assert names[-2:] == ["citations", "done"]
    assert set(names[:-2]) == {"delta"}
    assert "".join(data["text"] for name, data in events if name == "delta") == plain["answer"]
    assert events[-2][1] == {"citations": plain["citations"]}
    assert plain["citations"][0]["document_id"] == doc_id
    assert events[-1][1] == {}


def test_stream_errors_before_the_first_event_are_problems(client: TestClient) -> None:
    response = client.post(
        "/v1/ask", json={"question": "anything", "collections": ["nope"], "stream": True}
    )
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"


def test_llm_stream_drops_invented_citations_split_across_deltas(
    llm_client: tuple[TestClient, Container], llm: FakeOpenAI
) -> None:
    client, container = llm_client
    _, doc_id = seed(client, container.new_worker().run_until_idle)
    llm.reply(
        "Completed in 1894 [1]. Made of cheese [7].",
        deltas=["Completed in 1894 [", "1]. Made of cheese [", "7", "]."],
    )

    events = events_of(
        client.post("/v1/ask", json={"question": "When was it completed?", "stream": True})
    )

    text = "".join(data["text"] for name, data in events if name == "delta")
    assert text == "Completed in 1894 [1]. Made of cheese."
    citations = events[-2][1]["citations"]
    assert [(c["n"], c["document_id"]) for c in citations] == [(1, doc_id)]
    assert events[-1] == ("done", {})
    assert llm.chat_requests[-1].json["stream"] is True


def test_llm_failure_mid_stream_is_an_error_event(
    llm_client: tuple[TestClient, Container], llm: FakeOpenAI
) -> None:
    client, container = llm_client
    seed(client, container.new_worker().run_until_idle)
    llm.fail(500, message=f"upstream broke for {SECRET}")

    response = client.post("/v1/ask", json={"question": "When was it completed?", "stream": True})

    events = events_of(response)
    assert [name for name, _ in events] == ["error"]
    error = events[0][1]
    assert error["status"] == 503
    assert error["title"] == "Service Unavailable"
    assert error["detail"].startswith("LLM request failed")
    assert SECRET not in response.text
