"""/v1/ask and /readyz with RAGD_LLM_PROVIDER=anthropic: a real fake Messages API."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from ragd.api.app import create_app
from ragd.config import load_settings
from ragd.container import Container
from ragd.embedding import LocalEmbedder
from tests.generation.fake_anthropic import FakeAnthropic, sent_key
from tests.helpers import LOOPBACK_CLIENT

SECRET = "sk-ant-api-abcdefghijklmnop"


@pytest.fixture
def anthropic_llm() -> Iterator[FakeAnthropic]:
    with FakeAnthropic(api_key=SECRET) as server:
        yield server


@pytest.fixture
def anthropic_client(
    tmp_path: Path, embedder: LocalEmbedder, anthropic_llm: FakeAnthropic
) -> Iterator[tuple[TestClient, Container]]:
    settings = load_settings(
        data_dir=tmp_path,
        inprocess_worker=False,
        llm_provider="anthropic",
        llm_base_url=anthropic_llm.base_url,
        llm_model="claude-fake",
        llm_api_key=SECRET,
        llm_max_retries=0,
        log_format="json",
    )
    container = Container(settings, embedder=embedder)
    app = create_app(settings, container=container)
    with TestClient(app, client=LOOPBACK_CLIENT) as client:
        yield client, container
    container.close()


def test_ask_answers_through_anthropic_with_real_citations_only(
    anthropic_client: tuple[TestClient, Container], anthropic_llm: FakeAnthropic
) -> None:
    client, container = anthropic_client
    cid = client.post("/v1/collections", json={"name": "kb"}).json()["id"]
    client.post(
        f"/v1/collections/{cid}/documents",
        json={"text": "# Tower Bridge\n\nTower Bridge was completed in 1894."},
    )
    container.new_worker().run_until_idle()
    anthropic_llm.reply("Tower Bridge was completed in 1894 [1]. Cheese [7].")

    response = client.post("/v1/ask", json={"question": "When was Tower Bridge completed?"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert "[7]" not in body["answer"]
    assert [c["n"] for c in body["citations"]] == [1]
    sent = anthropic_llm.message_requests[-1]
    assert sent_key(sent.headers) == SECRET
    assert sent.json["model"] == "claude-fake"
    assert "Tower Bridge was completed in 1894." in sent.json["messages"][0]["content"]


def test_failure_is_503_without_the_key_and_readyz_reports_the_llm(
    anthropic_client: tuple[TestClient, Container], anthropic_llm: FakeAnthropic
) -> None:
    client, container = anthropic_client
    cid = client.post("/v1/collections", json={"name": "kb"}).json()["id"]
    client.post(f"/v1/collections/{cid}/documents", json={"text": "Bridges span rivers."})
    container.new_worker().run_until_idle()
    anthropic_llm.fail(529, message=f"overloaded {SECRET}")
    response = client.post("/v1/ask", json={"question": "What do bridges span?"})
    assert response.status_code == 503
    assert SECRET not in response.text
    assert "overloaded_error" in response.json()["detail"]

    llm = client.get("/readyz").json()["checks"]["llm"]
    assert llm["status"] == "ok"
    assert llm["required"] is False


@pytest.mark.parametrize("stream", [False, True])
def test_session_system_prompt_reaches_the_system_below_the_grounding_rules(
    anthropic_client: tuple[TestClient, Container], anthropic_llm: FakeAnthropic, stream: bool
) -> None:
    client, container = anthropic_client
    cid = client.post("/v1/collections", json={"name": "kb"}).json()["id"]
    client.post(
        f"/v1/collections/{cid}/documents",
        json={"text": "# Tower Bridge\n\nTower Bridge was completed in 1894."},
    )
    container.new_worker().run_until_idle()
    prompt = "Answer for a ten-year-old, in one sentence."
    session = client.post(
        "/v1/chat/sessions", json={"collections": [cid], "system_prompt": prompt}
    ).json()
    url = f"/v1/chat/sessions/{session['id']}/messages"
    anthropic_llm.reply("It was finished in 1894 [1].")

    response = client.post(
        url, json={"content": "When was Tower Bridge completed?", "stream": stream}
    )
    assert response.status_code == 200, response.text
    assert client.get(url).json()["messages"][-1]["content"] == "It was finished in 1894 [1]."
    (sent,) = anthropic_llm.message_requests
    assert sent.json.get("stream", False) is stream
    system = sent.json["system"]
    fenced = system.index(f"<instructions>\n{prompt}\n</instructions>")
    assert system.index("Never invent a source number") < fenced
    assert prompt not in sent.json["messages"][0]["content"]
