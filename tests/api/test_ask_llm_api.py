"""/v1/ask with an LLM configured: a real HTTP server speaking the OpenAI protocol."""

from __future__ import annotations

from fastapi.testclient import TestClient

from ragd.container import Container
from tests.api.conftest import LLM_SECRET as SECRET
from tests.generation.fake_openai import FakeOpenAI


def test_llm_answer_keeps_only_real_citations(
    llm_client: tuple[TestClient, Container], llm: FakeOpenAI
) -> None:
    client, container = llm_client
    cid = client.post("/v1/collections", json={"name": "kb"}).json()["id"]
    doc = client.post(
        f"/v1/collections/{cid}/documents",
        json={"text": "# Tower Bridge\n\nTower Bridge was completed in 1894."},
    ).json()
    container.new_worker().run_until_idle()
    llm.reply("Tower Bridge was completed in 1894 [1]. It is made of cheese [7].")

    response = client.post("/v1/ask", json={"question": "When was Tower Bridge completed?"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert "[7]" not in body["answer"]
    assert "[1]" in body["answer"]
    assert [c["n"] for c in body["citations"]] == [1]
    assert body["citations"][0]["document_id"] == doc["id"]

    sent = llm.chat_requests[-1]
    assert sent.headers.get("authorization") == f"Bearer {SECRET}"
    prompt = str(sent.json["messages"])
    assert "Tower Bridge was completed in 1894." in prompt
    assert "When was Tower Bridge completed?" in prompt
    assert sent.json["model"] == "fake-model"


def test_llm_failure_is_503_without_secrets(
    llm_client: tuple[TestClient, Container], llm: FakeOpenAI
) -> None:
    client, container = llm_client
    cid = client.post("/v1/collections", json={"name": "kb"}).json()["id"]
    client.post(f"/v1/collections/{cid}/documents", json={"text": "Bridges span rivers."})
    container.new_worker().run_until_idle()
    llm.fail(500, times=3)
    response = client.post("/v1/ask", json={"question": "What do bridges span?"})
    assert response.status_code == 503
    assert response.headers["content-type"] == "application/problem+json"
    assert SECRET not in response.text
    assert response.json()["detail"].startswith("LLM request failed")
