"""/v1/ask with an LLM configured: a real HTTP server speaking the OpenAI protocol."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from ragd.api import create_app
from ragd.config import load_settings
from ragd.container import Container
from ragd.embedding import LocalEmbedder
from tests.generation.fake_openai import FakeOpenAI
from tests.helpers import LOOPBACK_CLIENT

SECRET = "sk-test-abcdefghijklmnop"


@pytest.fixture
def llm() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as server:
        yield server


@pytest.fixture
def llm_client(
    tmp_path: Path, embedder: LocalEmbedder, llm: FakeOpenAI
) -> Iterator[tuple[TestClient, Container]]:
    settings = load_settings(
        data_dir=tmp_path,
        inprocess_worker=False,
        llm_base_url=llm.base_url,
        llm_model="fake-model",
        llm_api_key=SECRET,
        llm_max_retries=0,
        log_format="json",
    )
    container = Container(settings, embedder=embedder)
    with TestClient(create_app(settings, container=container), client=LOOPBACK_CLIENT) as client:
        yield client, container
    container.close()


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
